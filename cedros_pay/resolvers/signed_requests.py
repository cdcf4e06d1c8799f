"""Ed25519-signed requests, as the reference server and its UI send them (DESIGN §7).

Two forms carry the same proof:

- headers: `X-Signer` (base58 public key), `X-Signature` (standard base64 of the 64-byte
  signature over the exact `X-Message` bytes), `X-Message` = `<action>:<value>`;
- spec 04's body: `nonce` plus `signature` over the nonce's bytes (base64 or base58),
  signed by `X-Signer` when given, else by the merchant wallet (the reference's signer).

The order of the checks is what keeps them cheap to attack: the message's shape, then the
signature (a forged request can never burn a nonce), then who signed, then the nonce.
"""

from __future__ import annotations

from dataclasses import dataclass

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.resolvers.admin_auth import AdminAuth, verify_ed25519
from cedros_pay.resolvers.nonces import Nonces


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The signature material of one request, as received (any part may be missing)."""

    signer: str | None = None
    signature: str | None = None  # X-Signature
    message: str | None = None  # X-Message
    nonce: str | None = None  # spec 04 body form
    body_signature: str | None = None


def _bad_signature(message: str = "the request signature does not verify") -> CedrosError:
    return CedrosError(ErrorCode.INVALID_SIGNATURE, message)


class SignedRequests:
    """Checks signed requests; `default_signer` is the body form's signer (the merchant)."""

    def __init__(self, auth: AdminAuth, nonces: Nonces, default_signer: str) -> None:
        self._auth = auth
        self._nonces = nonces
        self._default_signer = default_signer

    @staticmethod
    def signed_by(req: SignedRequest, action: str, value: str) -> str:
        """The header form for `<action>:<value>` exactly; returns the signer. No nonce:
        the message names its object (a buyer's `request-refund:<purchase>`)."""
        if not (req.signer and req.signature and req.message):
            raise CedrosError(ErrorCode.UNAUTHORIZED,
                              "X-Signer, X-Signature and X-Message are required")
        if req.message != f"{action}:{value}":
            raise _bad_signature(f"X-Message must be {action}:{value} for this request")
        if not verify_ed25519(req.signer, req.signature, req.message):
            raise _bad_signature()
        return req.signer.strip()

    async def admin(self, tenant: str, req: SignedRequest, *, action: str, value: str | None,
                    purpose: str) -> str:
        """An admin's signed request for `action`; returns the signer.

        Header form: `X-Message` must be `<action>:<value>`; when `value` is None the
        message's value is a nonce (`list-pending-refunds:<nonce>`), which must equal the
        body's `nonce` when one is sent. Body form: `signature` over `nonce`. Any nonce is
        consumed once, for `purpose`, after the signer is known to be an admin."""
        nonce: str | None
        if req.signer and req.signature and req.message:
            signer = req.signer.strip()
            got_action, sep, got_value = req.message.partition(":")
            if not sep or got_action != action or not got_value:
                raise _bad_signature(f"X-Message must be {action}:<"
                                     f"{'nonce' if value is None else 'id'}>")
            if value is not None and got_value != value:
                raise _bad_signature(f"X-Message names {got_value!r}, not {value!r}")
            if not verify_ed25519(signer, req.signature, req.message):
                raise _bad_signature()
            nonce = got_value if value is None else (req.nonce or None)
            if value is None and req.nonce and req.nonce != got_value:
                raise _bad_signature("the body's nonce is not the one X-Message signs")
        elif req.nonce and req.body_signature:
            signer = (req.signer or self._default_signer).strip()
            if not signer or not verify_ed25519(signer, req.body_signature, req.nonce):
                raise _bad_signature()
            nonce = req.nonce
        else:
            raise CedrosError(ErrorCode.UNAUTHORIZED,
                              "a signed request is required (X-Signer, X-Signature, "
                              "X-Message, or nonce and signature)")
        if not self._auth.is_admin_signer(signer):
            raise CedrosError(ErrorCode.UNAUTHORIZED_REFUND_ISSUER,
                              "the signer is not an admin of this server")
        if nonce is not None:
            await self._nonces.consume(tenant, nonce, purpose)
        return signer
