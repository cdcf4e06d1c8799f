"""ID generators and format checks (spec 16 "ID Generation Formats", spec 17).

Random parts come from `secrets` (the CSPRNG), so the reference's fallbacks for a failing
`crypto/rand` have no counterpart here.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from datetime import UTC, datetime

CART_PREFIX = "cart_"
REFUND_PREFIX = "refund_"
EVENT_PREFIX = "evt_"
REQUEST_PREFIX = "req_"
WEBHOOK_PREFIX = "webhook_"

_HEX32 = r"[0-9a-f]{32}"
_CART = re.compile(CART_PREFIX + _HEX32)
_REFUND = re.compile(REFUND_PREFIX + _HEX32)
_EVENT = re.compile(EVENT_PREFIX + r"[0-9a-f]{24}")
_REQUEST = re.compile(REQUEST_PREFIX + _HEX32)
_NONCE = re.compile(_HEX32)
_WEBHOOK = re.compile(WEBHOOK_PREFIX + r"[0-9]{1,20}")
_MEMO_NONCE = re.compile(r"[A-Za-z0-9_-]{8}")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_SANE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}

MAX_PRODUCT_ID_LENGTH = 255
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_cart_id() -> str:
    """`cart_` + 16 random bytes as hex (37 chars)."""
    return CART_PREFIX + secrets.token_hex(16)


def new_refund_id() -> str:
    """`refund_` + 16 random bytes as hex (39 chars)."""
    return REFUND_PREFIX + secrets.token_hex(16)


def new_event_id() -> str:
    """`evt_` + 12 random bytes as hex (28 chars)."""
    return EVENT_PREFIX + secrets.token_hex(12)


def new_request_id() -> str:
    """`req_` + 16 random bytes as hex (36 chars)."""
    return REQUEST_PREFIX + secrets.token_hex(16)


def new_nonce_id() -> str:
    """Admin nonce: 16 random bytes as hex, no prefix (32 chars; DESIGN §7)."""
    return secrets.token_hex(16)


_MEMO_NONCE_BYTES = 6
MEMO_NONCE_LENGTH = len(base64.urlsafe_b64encode(bytes(_MEMO_NONCE_BYTES)))  # ASCII chars


def new_memo_nonce() -> str:
    """Memo `{nonce}`: 6 random bytes as unpadded base64url (8 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_MEMO_NONCE_BYTES)).decode("ascii")


def new_subscription_id() -> str:
    """Subscriptions are keyed by a UUID v4 (36 chars)."""
    return str(uuid.uuid4())


def new_webhook_id(now: datetime | None = None) -> str:
    """`webhook_` + Unix time in nanoseconds (the reference's format).

    Two ids made in the same nanosecond would collide; the webhook queue's primary key
    rejects the second, it never overwrites.
    """
    if now is None:
        nanos = time.time_ns()
    else:
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        delta = now - _EPOCH
        nanos = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return f"{WEBHOOK_PREFIX}{nanos}"


def is_cart_id(value: str) -> bool:
    return _CART.fullmatch(value) is not None


def is_refund_id(value: str) -> bool:
    return _REFUND.fullmatch(value) is not None


def is_event_id(value: str) -> bool:
    return _EVENT.fullmatch(value) is not None


def is_request_id(value: str) -> bool:
    """A request id in the form this server generates."""
    return _REQUEST.fullmatch(value) is not None


def is_sane_request_id(value: str) -> bool:
    """An incoming X-Request-ID we propagate: 1-128 visible ASCII chars (DESIGN §7)."""
    return _SANE_REQUEST_ID.fullmatch(value) is not None


def is_nonce_id(value: str) -> bool:
    return _NONCE.fullmatch(value) is not None


def is_memo_nonce(value: str) -> bool:
    return _MEMO_NONCE.fullmatch(value) is not None


def is_subscription_id(value: str) -> bool:
    return _UUID4.fullmatch(value) is not None


def is_webhook_id(value: str) -> bool:
    return _WEBHOOK.fullmatch(value) is not None


def is_product_id(value: str) -> bool:
    """Spec 17: 1 to 255 characters."""
    return 1 <= len(value) <= MAX_PRODUCT_ID_LENGTH


def b58decode(value: str) -> bytes | None:
    """Decode base58 (Bitcoin alphabet); None if a character is outside it."""
    number = 0
    for char in value:
        digit = _B58_INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    zeros = len(value) - len(value.lstrip("1"))
    return b"\x00" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _b58_length_is(value: str, size: int, max_chars: int) -> bool:
    if not 1 <= len(value) <= max_chars:
        return False
    raw = b58decode(value)
    return raw is not None and len(raw) == size


def is_solana_address(value: str) -> bool:
    """Base58 that decodes to 32 bytes (spec 17).

    On-curve is not required: token accounts (ATAs) are off-curve program addresses.
    """
    return _b58_length_is(value, 32, 44)


def is_solana_signature(value: str) -> bool:
    """Base58 that decodes to a 64-byte signature (usually 88 chars, sometimes 87 or fewer)."""
    return _b58_length_is(value, 64, 88)
