"""The X-PAYMENT header (spec 07 step 1-5, spec 16 "X-PAYMENT Header Format").

Two steps, so a caller can route by protocol version before committing to a shape:

    header = decode_payment_header(value)      # base64 or raw JSON -> object + version
    if header.version == 0:
        payment = parse_v0(header)             # the Cedros format
    # else: hand header.document to a v1/v2 (official x402) parser

`parse_payment_header(value)` does both for version 0 and refuses the others.

Every malformed input becomes a `CedrosError` (`invalid_payment_proof`, with a `Reason` in
`details["reason"]` and the offending `field`), never a raw exception. The transaction
bytes are not decoded here: that is `transaction.decode_transaction`'s job, and its
failures are `invalid_transaction` (spec 22 "Error Codes Returned").

Decisions:
- A header longer than `MAX_HEADER_BYTES` (16 KiB) is refused before decoding. A Solana
  transaction is at most 1232 bytes, so a real header is ~2-4 KiB even after double base64.
- Base64 may be standard or URL-safe, padded or not; a value starting with `{` is raw JSON.
- Duplicate JSON keys and NaN/Infinity are refused: two parsers must never read one header
  two ways.
- JSON `null` for an optional field is the same as absent (DESIGN §7).
- `metadata` values: strings pass; numbers and booleans are stringified in their JSON
  spelling (`3`, `1.5`, `true`), because JavaScript clients send them unquoted and the
  Go reference's `map[string]string` would otherwise drop the whole payment; `null`
  values are dropped; arrays and objects are refused (no faithful string form).
- Unknown fields are ignored (forward compatibility with newer clients).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NoReturn

from solders.pubkey import Pubkey
from solders.signature import Signature

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.reasons import Reason

MAX_HEADER_BYTES = 16 * 1024
MAX_METADATA_ENTRIES = 64
SCHEMES = frozenset({"solana-spl-transfer", "solana"})
CEDROS_VERSION = 0

_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


class ResourceType(StrEnum):
    REGULAR = "regular"
    CART = "cart"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class SolanaPayload:
    """The scheme-specific part (spec 22 `SolanaPayload`); addresses are base58 text."""

    transaction: str  # base64 of the serialized (legacy or v0) transaction
    signature: str | None = None
    resource: str | None = None
    resource_type: ResourceType = ResourceType.REGULAR
    fee_payer: str | None = None
    memo: str | None = None
    recipient_token_account: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class PaymentPayload:
    """A parsed version-0 X-PAYMENT header."""

    x402_version: int
    scheme: str
    network: str
    payload: SolanaPayload


@dataclass(frozen=True, slots=True)
class PaymentHeader:
    """A decoded header of any version, before its version-specific shape is checked."""

    version: int
    document: Mapping[str, Any]


def parse_payment_header(value: str, *, max_bytes: int = MAX_HEADER_BYTES) -> PaymentPayload:
    """Decode and validate a version-0 X-PAYMENT header; other versions are refused
    (`unsupported_version`, with `details["x402Version"]`)."""
    return parse_v0(decode_payment_header(value, max_bytes=max_bytes))


def decode_payment_header(value: str, *, max_bytes: int = MAX_HEADER_BYTES) -> PaymentHeader:
    """base64 JSON (or raw JSON, for testing) -> the JSON object and its `x402Version`."""
    if not isinstance(value, str):
        _refuse(Reason.WRONG_TYPE, "the X-PAYMENT header must be text")
    text = value.strip()
    if not text:
        _refuse(Reason.HEADER_EMPTY, "the X-PAYMENT header is empty")
    if len(text) > max_bytes:  # chars >= bytes for the ASCII a valid header is made of
        _refuse(Reason.HEADER_TOO_LARGE,
                f"the X-PAYMENT header is larger than {max_bytes} bytes",
                {"limit": max_bytes})
    raw = text.encode() if text.startswith("{") else _b64decode(text)
    try:
        doc_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _refuse(Reason.HEADER_NOT_UTF8, "the X-PAYMENT header is not UTF-8 JSON")
    try:
        document = json.loads(doc_text, object_pairs_hook=_unique_keys,
                              parse_constant=_no_constants)
    except _DuplicateKeyError as exc:
        _refuse(Reason.DUPLICATE_KEY, f"the X-PAYMENT header repeats the key {exc.key!r}",
                {"field": exc.key})
    except (ValueError, RecursionError):
        _refuse(Reason.HEADER_NOT_JSON, "the X-PAYMENT header is not valid JSON")
    if not isinstance(document, dict):
        _refuse(Reason.HEADER_NOT_OBJECT, "the X-PAYMENT header must be a JSON object")
    version = document.get("x402Version")
    if version is None:
        _missing("x402Version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        _wrong_type("x402Version", "a non-negative integer")
    return PaymentHeader(version, MappingProxyType(document))


def parse_v0(header: PaymentHeader) -> PaymentPayload:
    """Validate the Cedros (version 0) shape of a decoded header."""
    if header.version != CEDROS_VERSION:
        _refuse(Reason.UNSUPPORTED_VERSION,
                f"x402Version {header.version} is not supported here (expected 0)",
                {"x402Version": header.version})
    doc = header.document
    scheme = _required_str(doc, "scheme")
    if scheme not in SCHEMES:
        _refuse(Reason.UNSUPPORTED_SCHEME,
                f"scheme {scheme!r} is not supported; use one of {sorted(SCHEMES)}",
                {"field": "scheme"})
    network = _required_str(doc, "network")
    body = doc.get("payload")
    if body is None:
        _missing("payload")
    if not isinstance(body, dict):
        _wrong_type("payload", "an object")
    return PaymentPayload(header.version, scheme, network, _solana_payload(body))


def _solana_payload(body: Mapping[str, Any]) -> SolanaPayload:
    transaction = _required_str(body, "transaction", prefix="payload.")
    signature = _optional_str(body, "signature")
    if signature is not None:
        try:
            Signature.from_string(signature)
        except ValueError:
            _refuse(Reason.INVALID_SIGNATURE_TEXT,
                    "payload.signature is not a base58 transaction signature",
                    {"field": "payload.signature"})
    resource_type = ResourceType.REGULAR
    raw_type = _optional_str(body, "resourceType")
    if raw_type is not None:
        try:
            resource_type = ResourceType(raw_type.strip().lower())
        except ValueError:
            _refuse(Reason.INVALID_RESOURCE_TYPE,
                    f"payload.resourceType {raw_type!r} is not regular, cart or refund",
                    {"field": "payload.resourceType"})
    return SolanaPayload(
        transaction=transaction,
        signature=signature,
        resource=_optional_str(body, "resource"),
        resource_type=resource_type,
        fee_payer=_optional_address(body, "feePayer"),
        memo=_optional_str(body, "memo"),
        recipient_token_account=_optional_address(body, "recipientTokenAccount"),
        metadata=_metadata(body.get("metadata")),
    )


def _metadata(value: Any) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        _wrong_type("payload.metadata", "an object of strings")
    if len(value) > MAX_METADATA_ENTRIES:
        _refuse(Reason.INVALID_METADATA,
                f"payload.metadata has more than {MAX_METADATA_ENTRIES} entries",
                {"field": "payload.metadata"})
    out: dict[str, str] = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool | int | float):
            out[key] = json.dumps(item)  # true / 3 / 1.5, as the client wrote them
        else:
            _refuse(Reason.INVALID_METADATA,
                    f"payload.metadata[{key!r}] must be a string, number or boolean",
                    {"field": f"payload.metadata.{key}"})
    return MappingProxyType(out)


# --- helpers -------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    if not _BASE64_TEXT.fullmatch(text):
        _refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header is neither base64 nor JSON")
    standard = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(standard) % 4 == 1:
        _refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header has a truncated base64 value")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        _refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header is neither base64 nor JSON")


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _required_str(doc: Mapping[str, Any], key: str, *, prefix: str = "") -> str:
    value = doc.get(key)
    if value is None:
        _missing(prefix + key)
    if not isinstance(value, str):
        _wrong_type(prefix + key, "a string")
    if not value.strip():
        _missing(prefix + key)
    return value


def _optional_str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        _wrong_type(f"payload.{key}", "a string")
    return value


def _optional_address(doc: Mapping[str, Any], key: str) -> str | None:
    value = _optional_str(doc, key)
    if value is None or not value.strip():
        return None
    try:
        return str(Pubkey.from_string(value.strip()))
    except ValueError:
        _refuse(Reason.INVALID_ADDRESS, f"payload.{key} is not a base58 Solana address",
                {"field": f"payload.{key}"})


def _missing(name: str) -> NoReturn:
    _refuse(Reason.MISSING_FIELD, f"the X-PAYMENT header lacks {name}", {"field": name})


def _wrong_type(name: str, expected: str) -> NoReturn:
    _refuse(Reason.WRONG_TYPE, f"{name} must be {expected}", {"field": name})


def _refuse(reason: Reason, message: str, details: Mapping[str, Any] | None = None) -> NoReturn:
    raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF, message,
                      {"reason": reason.value, **(details or {})})
