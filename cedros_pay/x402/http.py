"""x402 over HTTP: the header names, decoding the payment header a request carries, and
encoding PAYMENT-REQUIRED and the settlement headers (the SDK's `http/`).

Decoding (spec 07 steps 1-5, spec 16 "X-PAYMENT Header Format"):
- A header longer than `MAX_HEADER_BYTES` (16 KiB) is refused before decoding. A Solana
  transaction is at most 1232 bytes, so a real header is ~2-4 KiB even after double base64.
- Base64 may be standard or URL-safe, padded or not; a value starting with `{` is raw JSON.
- Duplicate JSON keys and NaN/Infinity are refused: two parsers must never read one header
  two ways.
Every malformed input is `invalid_payment_proof` with a `Reason`, never a raw exception.

Which header answers (the version the client paid with): v0 gets X-PAYMENT-RESPONSE with
the Cedros keys; v1 gets X-PAYMENT-RESPONSE with the official keys and the Cedros ones
beside them; v2 gets PAYMENT-RESPONSE.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from types import MappingProxyType
from typing import Any, NoReturn

import orjson

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.x402.networks import wire_network
from cedros_pay.x402.reasons import Reason, missing, refuse, wrong_type
from cedros_pay.x402.schemas import PaymentHeader, PaymentRequired, SettleResponse

X_PAYMENT = "X-PAYMENT"  # v0 (Cedros) and v1
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"  # v2
PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"  # v2
X_PAYMENT_RESPONSE = "X-PAYMENT-RESPONSE"  # v0 and v1
EXPOSED_HEADERS = f"{PAYMENT_REQUIRED}, {PAYMENT_RESPONSE}, {X_PAYMENT_RESPONSE}"

MAX_HEADER_BYTES = 16 * 1024

_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


def read_payment(x_payment: str | None, payment_signature: str | None) -> PaymentHeader:
    """The request's payment, decoded once: PAYMENT-SIGNATURE carries v2 only; X-PAYMENT
    carries 0 (Cedros) or 1 (exact)."""
    if payment_signature:
        header = decode_payment_header(payment_signature)
        if header.version != 2:
            raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                              "PAYMENT-SIGNATURE carries x402Version 2 only",
                              {"reason": Reason.UNSUPPORTED_VERSION.value,
                               "x402Version": header.version})
        return header
    if x_payment:
        return decode_payment_header(x_payment)
    raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                      "a PAYMENT-SIGNATURE or X-PAYMENT header is required")


def answer_version(payment_signature: str | None, header: PaymentHeader | None) -> int:
    """The version a reply speaks: 2 for PAYMENT-SIGNATURE, else the X-PAYMENT header's
    (0 when it could not be read)."""
    if payment_signature:
        return 2
    return header.version if header is not None else 0


def decode_payment_header(value: str, *, max_bytes: int = MAX_HEADER_BYTES) -> PaymentHeader:
    """base64 JSON (or raw JSON, for testing) -> the JSON object and its `x402Version`."""
    if not isinstance(value, str):
        refuse(Reason.WRONG_TYPE, "the X-PAYMENT header must be text")
    text = value.strip()
    if not text:
        refuse(Reason.HEADER_EMPTY, "the X-PAYMENT header is empty")
    if len(text) > max_bytes:  # chars >= bytes for the ASCII a valid header is made of
        refuse(Reason.HEADER_TOO_LARGE,
               f"the X-PAYMENT header is larger than {max_bytes} bytes",
               {"limit": max_bytes})
    raw = text.encode() if text.startswith("{") else _b64decode(text)
    try:
        doc_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        refuse(Reason.HEADER_NOT_UTF8, "the X-PAYMENT header is not UTF-8 JSON")
    try:
        document = json.loads(doc_text, object_pairs_hook=_unique_keys,
                              parse_constant=_no_constants)
    except _DuplicateKeyError as exc:
        refuse(Reason.DUPLICATE_KEY, f"the X-PAYMENT header repeats the key {exc.key!r}",
               {"field": exc.key})
    except (ValueError, RecursionError):
        refuse(Reason.HEADER_NOT_JSON, "the X-PAYMENT header is not valid JSON")
    if not isinstance(document, dict):
        refuse(Reason.HEADER_NOT_OBJECT, "the X-PAYMENT header must be a JSON object")
    version = document.get("x402Version")
    if version is None:
        missing("x402Version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        wrong_type("x402Version", "a non-negative integer")
    return PaymentHeader(version, MappingProxyType(document))


def base64_json(doc: dict[str, Any]) -> str:
    """Standard base64 of compact JSON, as every x402 header carries it."""
    return binascii.b2a_base64(orjson.dumps(doc), newline=False).decode()


def encode_payment_required(required: PaymentRequired) -> str:
    """PAYMENT-REQUIRED: base64 of the x402 v2 PaymentRequired object."""
    return base64_json(required.document())


def settlement_header(response: SettleResponse) -> tuple[str, str]:
    """The (name, value) of the header that reports `response` in its version."""
    version = response.version
    if version not in (1, 2):
        if response.success:
            body = {"success": True, "txHash": response.transaction,
                    "networkId": response.network, "error": None}
        else:
            body = {"success": False, "txHash": None, "networkId": None,
                    "error": response.error_message}
        return X_PAYMENT_RESPONSE, base64_json(body)
    doc: dict[str, Any] = {"success": True} if response.success else {
        "success": False, "errorReason": response.error_reason,
        "errorMessage": response.error_message}
    doc.update(transaction=response.transaction,
               network=wire_network(response.network, version), payer=response.payer)
    if version == 2:
        return PAYMENT_RESPONSE, base64_json(doc)
    if response.success:  # v1 keeps the Cedros keys beside the official ones
        doc.update(txHash=response.transaction, networkId=response.network, error=None)
    else:
        doc.update(txHash=None, networkId=None, error=response.error_message)
    return X_PAYMENT_RESPONSE, base64_json(doc)


def refusal(version: int, network: str, error: CedrosError) -> SettleResponse:
    """The settlement report of a refused payment (`success: false`, the spec code as
    `errorReason`), so an SDK client sees why without parsing the body."""
    return SettleResponse(version, network, error_reason=error.code.value,
                          error_message=error.message)


# --- decoding helpers ------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    if not _BASE64_TEXT.fullmatch(text):
        refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header is neither base64 nor JSON")
    standard = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(standard) % 4 == 1:
        refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header has a truncated base64 value")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        refuse(Reason.HEADER_NOT_BASE64, "the X-PAYMENT header is neither base64 nor JSON")


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
