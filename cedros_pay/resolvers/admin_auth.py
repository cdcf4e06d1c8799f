"""Who may call admin operations: Bearer API keys or Ed25519-signed requests (DESIGN §7)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from solders.pubkey import Pubkey
from solders.signature import Signature

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import b58decode
from cedros_pay.resolvers.nonces import Nonces

log = logging.getLogger("cedros_pay.admin")


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    method: str  # "api_key" | "signature"
    subject: str  # a key fingerprint or the signer's public key


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    signer: str | None = None
    signature: str | None = None
    message: str | None = None


SIGNATURE_BYTES = 64
MAX_SIGNATURE_TEXT = 128  # base64 of 64 bytes is 88 chars, base58 at most 88


def decode_signature(text: str) -> bytes | None:
    """64 signature bytes from standard base64 (the headers' form) or base58 (spec 04's
    body form); None if neither."""
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


def verify_ed25519(signer: str, signature: str, message: str) -> bool:
    """True if `signature` is `signer`'s Ed25519 signature over the exact message bytes
    (every signed request of the gateway is checked here: admin, refunds, subscriptions)."""
    raw = decode_signature(signature)
    if raw is None:
        return False
    try:
        key = Pubkey.from_string(signer.strip())
    except ValueError:
        return False
    return Signature.from_bytes(raw).verify(key, message.encode())


class AdminAuth:
    def __init__(self, *, api_keys: Iterable[str], signers: Iterable[str], nonces: Nonces) -> None:
        self._keys = [k.encode() for k in api_keys if k]
        self._signers = frozenset(s for s in signers if s)
        self._nonces = nonces
        if not self._keys and not self._signers:
            log.warning("no admin API keys or signers configured: admin operations are refused")

    @property
    def configured(self) -> bool:
        return bool(self._keys or self._signers)

    @property
    def accepts_api_keys(self) -> bool:
        """Bearer admin keys are configured (the OpenAPI document lists the scheme)."""
        return bool(self._keys)

    def is_admin_signer(self, public_key: str) -> bool:
        return public_key in self._signers

    def _match_key(self, presented: str) -> str | None:
        candidate = presented.encode()
        # Compare against every key so timing does not tell which one (or how many) exist.
        found = None
        for key in self._keys:
            if hmac.compare_digest(candidate, key):
                found = key
        return hashlib.sha256(found).hexdigest()[:12] if found else None

    async def authenticate(self, tenant: str, authorization: str | None,
                           signed: SignedHeaders) -> AdminIdentity:
        """Bearer key, or `X-Message: admin:<nonce>` signed by an admin signer."""
        if not self.configured:
            raise CedrosError(ErrorCode.FORBIDDEN, "admin access is not configured on this server")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                fingerprint = self._match_key(token.strip())
                if fingerprint:
                    return AdminIdentity("api_key", fingerprint)
            raise CedrosError(ErrorCode.UNAUTHORIZED, "invalid admin credentials")
        if signed.signer and signed.signature and signed.message:
            action, _, nonce = signed.message.partition(":")
            if action != "admin" or not nonce:
                raise CedrosError(ErrorCode.UNAUTHORIZED, "X-Message must be admin:<nonce>")
            if not verify_ed25519(signed.signer, signed.signature, signed.message):
                raise CedrosError(ErrorCode.UNAUTHORIZED, "invalid admin signature")
            if signed.signer not in self._signers:  # who they are is proven: 403, not 401
                raise CedrosError(ErrorCode.FORBIDDEN, "this signer is not an admin")
            # The signature is checked first so a forged request cannot burn a nonce.
            await self._nonces.consume(tenant, nonce, "admin")
            return AdminIdentity("signature", signed.signer)
        raise CedrosError(ErrorCode.UNAUTHORIZED, "admin credentials required")
