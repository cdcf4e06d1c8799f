"""An agent's refund from request to on-chain transfer (issue 14), step by step:

    python -m cedros_pay.sandbox.refund PURCHASE_SIGNATURE --amount 0.5 \\
        --payer data/sandbox/payer.json --merchant data/sandbox/merchant.json

1. the buyer signs `request-refund:<purchase>` and POSTs /refunds/request;
2. the merchant takes a `refund_list` nonce and lists the pending refunds;
3. the merchant signs `approve-refund:<id>`: the answer is the x402 quote;
4. the merchant wallet builds and signs the quoted transfer (fee payer and authority);
5. POST /verify with the X-PAYMENT (`resourceType: refund`) sends and settles it.

Works against any Cedros server whose `x402.payment_address` is the merchant key given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.payer import (
    PaymentFailed,
    Say,
    _quiet,
    _rpc,
    read_keypair,
    v0_payment_header,
)
from cedros_pay.x402.networks import CAIP2


def signed_headers(key: Keypair, message: str) -> dict[str, str]:
    """X-Signer / X-Signature (base64) / X-Message, as the reference UI sends them."""
    signature = base64.b64encode(bytes(key.sign_message(message.encode()))).decode()
    return {"X-Signer": str(key.pubkey()), "X-Signature": signature, "X-Message": message}


def cedros_network(caip2_id: str) -> str:
    """The Cedros name (what an x402 v0 payload carries) of a quote's CAIP-2 network."""
    names = [name for name, cid in CAIP2.items() if cid == caip2_id and name != "localnet"]
    if not names:
        raise PaymentFailed(f"unknown network {caip2_id!r} in the quote")
    return names[0]


def _ok(resp: httpx.Response, step: str) -> dict[str, Any]:
    body: Any = resp.json() if resp.content else {}
    if resp.status_code >= 400 or not isinstance(body, dict):
        raise PaymentFailed(f"{step}: HTTP {resp.status_code} {resp.text}")
    return body


def refund_transfer(quote: dict[str, Any], merchant: Keypair, token_program: Pubkey,
                    blockhash: Hash) -> VersionedTransaction:
    """The quoted TransferChecked from the merchant's token account to `payTo`, with the
    quote's memo, the merchant paying the fee."""
    mint = Pubkey.from_string(quote["asset"])
    extra = quote["extra"]
    source = spl.associated_token_address(merchant.pubkey(), mint, token_program)
    instructions = [
        spl.transfer_checked(source, mint, Pubkey.from_string(quote["payTo"]),
                             merchant.pubkey(), int(quote["amount"]), int(extra["decimals"]),
                             token_program),
        spl.memo(extra["memo"]),
    ]
    message = MessageV0.try_compile(merchant.pubkey(), instructions, [], blockhash)
    return VersionedTransaction(message, [merchant])


async def refund(api: httpx.AsyncClient, rpc: httpx.AsyncClient, rpc_url: str, *,
                 purchase: str, amount: str, token: str, payer: Keypair, merchant: Keypair,
                 reason: str = "", say: Say = _quiet) -> dict[str, Any]:
    """Steps 1-5 of the module doc; `api` has the server as its base URL. Returns the
    settled /verify body."""
    asked = _ok(await api.post("/paywall/v1/refunds/request", json={
        "originalPurchaseId": purchase, "recipientWallet": str(payer.pubkey()),
        "amount": amount, "token": token, "reason": reason},
        headers=signed_headers(payer, f"request-refund:{purchase}")), "request")
    refund_id = str(asked["refundId"])
    say(f"request POST /refunds/request signed by {payer.pubkey()} -> {refund_id} "
        f"({asked['status']}, {asked['amount']} {asked['token']})")
    nonce = _ok(await api.post("/paywall/v1/nonce", json={"purpose": "refund_list"}),
                "nonce")["nonce"]
    pending = _ok(await api.post("/paywall/v1/refunds/pending", json={"nonce": nonce},
                                 headers=signed_headers(merchant,
                                                        f"list-pending-refunds:{nonce}")),
                  "pending")
    say(f"pending POST /refunds/pending (nonce {nonce}) -> "
        f"{len(pending['refunds'])} open refund(s)")
    approved = _ok(await api.post("/paywall/v1/refunds/approve", json={"refundId": refund_id},
                                  headers=signed_headers(merchant,
                                                         f"approve-refund:{refund_id}")),
                   "approve")
    quote = approved["quote"]
    say(f"approve POST /refunds/approve -> quote: {quote['amount']} atomic of "
        f"{quote['asset']} to {quote['payTo']}, memo {quote['extra']['memo']!r}, "
        f"until {approved['expiresAt']}")
    mint_info = await _rpc(rpc, rpc_url, "getAccountInfo",
                           [quote["asset"], {"encoding": "base64"}])
    if not mint_info or not mint_info.get("value"):
        raise PaymentFailed(f"mint {quote['asset']} not found on {rpc_url}")
    latest = await _rpc(rpc, rpc_url, "getLatestBlockhash", [{"commitment": "confirmed"}])
    tx = refund_transfer(quote, merchant, Pubkey.from_string(mint_info["value"]["owner"]),
                         Hash.from_string(latest["value"]["blockhash"]))
    say(f"sign    signed by the merchant {merchant.pubkey()}: {tx.signatures[0]}")
    settled = _ok(await api.post("/paywall/v1/verify", headers={
        "X-PAYMENT": v0_payment_header(tx, refund_id, network=cedros_network(quote["network"]),
                                       resource_type="refund")}), "execute")
    say(f"settle  POST /verify (resourceType refund) -> {settled['amount']} atomic to "
        f"{payer.pubkey()}, transaction {settled['signature']}")
    return settled


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cedros_pay.sandbox.refund",
                                     description="Refund an x402 purchase end to end.")
    parser.add_argument("purchase", help="the purchase's transaction signature")
    parser.add_argument("--amount", required=True, help="decimal amount, e.g. 0.5")
    parser.add_argument("--token", default="USDC")
    parser.add_argument("--reason", default="")
    parser.add_argument("--payer", type=Path, required=True, help="the buyer's keypair")
    parser.add_argument("--merchant", type=Path, required=True,
                        help="the merchant wallet's keypair (x402.payment_address)")
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8899")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        payer, merchant = read_keypair(args.payer), read_keypair(args.merchant)
    except (OSError, ValueError) as exc:
        print(f"refund: cannot read keypair: {exc}", file=sys.stderr)
        return 1

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=args.server, timeout=60) as api, \
                httpx.AsyncClient(timeout=60) as rpc:
            return await refund(api, rpc, args.rpc_url, purchase=args.purchase,
                                amount=args.amount, token=args.token, payer=payer,
                                merchant=merchant, reason=args.reason,
                                say=lambda line: print(line, flush=True))

    try:
        settled = asyncio.run(run())
    except (PaymentFailed, httpx.HTTPError, KeyError) as exc:
        print(f"refund: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(settled, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
