"""The x402 protocol, laid out like the official SDK; pure (no I/O), importing only
`cedros_pay.core` and solders, so every layer above may use it.

- `schemas`: the wire objects: payment header, v0 payload, exact payment and requirement,
  PaymentRequired, settlement response;
- `http`: header names, decoding the request's payment header (once), encoding
  PAYMENT-REQUIRED and the settlement / refusal headers;
- `cedros_v0`: the Cedros scheme (x402Version 0): payload shape, its memo rule;
- `exact`: the official `exact` scheme (versions 1 and 2): envelope, `accepted`, layout,
  its memo rule;
- `memo`: memo templates shared by both schemes (spec 16);
- `networks`: how each version names a Solana network;
- `reasons`: the `details["reason"]` of every refusal;
- `svm`: Solana program ids and instruction tags the schemes name.
"""
