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

import base64
import binascii
from dataclasses import dataclass

from solders.pubkey import Pubkey
from solders.signature import Signature

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import b58decode
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.nonces import Nonces

SIGNATURE_BYTES = 64
MAX_SIGNATURE_TEXT = 128  # base64 of 64 bytes is 88 chars, base58 at most 88


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The signature material of one request, as received (any part may be missing)."""

    signer: str | None = None
    signature: str | None = None  # X-Signature
    message: str | None = None  # X-Message
    nonce: str | None = None  # spec 04 body form
    body_signature: str | None = None


def decode_signature(text: str) -> bytes | None:
    """64 signature bytes from standard base64 or base58 text; None if neither."""
    text = text.strip()
    if not text or len(text) > MAX_SIGNATURE_TEXT:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
        if len(raw) == SIGNATURE_BYTES:
            return raw
    except (ValueError, binascii.Error):
        pass
    raw58 = b58decode(text)
    return raw58 if raw58 is not None and len(raw58) == SIGNATURE_BYTES else None


def verifies(signer: str, signature: str, message: str) -> bool:
    """True if `signature` (base64 or base58) is `signer`'s over the exact message bytes."""
    raw = decode_signature(signature)
    if raw is None:
        return False
    try:
        key = Pubkey.from_string(signer.strip())
    except ValueError:
        return False
    return Signature.from_bytes(raw).verify(key, message.encode())


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
        if not verifies(req.signer, req.signature, req.message):
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
            if not verifies(signer, req.signature, req.message):
                raise _bad_signature()
            nonce = got_value if value is None else (req.nonce or None)
            if value is None and req.nonce and req.nonce != got_value:
                raise _bad_signature("the body's nonce is not the one X-Message signs")
        elif req.nonce and req.body_signature:
            signer = (req.signer or self._default_signer).strip()
            if not signer or not verifies(signer, req.body_signature, req.nonce):
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
