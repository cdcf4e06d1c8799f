"""The Cedros scheme (x402Version 0, spec 16 "X-PAYMENT Header Format"): the payload's
shape and its memo rule. The Cedros React UI speaks it; carts are paid with it only.

Decisions:
- JSON `null` for an optional field is the same as absent (DESIGN §7).
- `metadata` values: strings pass; numbers and booleans are stringified in their JSON
  spelling (`3`, `1.5`, `true`), because JavaScript clients send them unquoted and the
  Go reference's `map[string]string` would otherwise drop the whole payment; `null`
  values are dropped; arrays and objects are refused (no faithful string form).
- Unknown fields are ignored (forward compatibility with newer clients).
- The transaction bytes are not decoded here (`integrations/solana/transaction`); their
  failures are `invalid_transaction` (spec 22 "Error Codes Returned").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from cedros_pay.x402.http import MAX_HEADER_BYTES, decode_payment_header
from cedros_pay.x402.memo import memo_matcher
from cedros_pay.x402.reasons import Reason, missing, refuse, wrong_type
from cedros_pay.x402.schemas import PaymentHeader, PaymentPayload, ResourceType, SolanaPayload

VERSION = 0
SCHEMES = frozenset({"solana-spl-transfer", "solana"})
MAX_METADATA_ENTRIES = 64
CART_PREFIXES = ("cart:", "cart_")


def parse_payment_header(value: str, *, max_bytes: int = MAX_HEADER_BYTES) -> PaymentPayload:
    """Decode and validate a version-0 X-PAYMENT header; other versions are refused
    (`unsupported_version`, with `details["x402Version"]`)."""
    return parse_v0(decode_payment_header(value, max_bytes=max_bytes))


def parse_v0(header: PaymentHeader) -> PaymentPayload:
    """Validate the Cedros (version 0) shape of a decoded header."""
    if header.version != VERSION:
        refuse(Reason.UNSUPPORTED_VERSION,
               f"x402Version {header.version} is not supported here (expected 0)",
               {"x402Version": header.version})
    doc = header.document
    scheme = _required_str(doc, "scheme")
    if scheme not in SCHEMES:
        refuse(Reason.UNSUPPORTED_SCHEME,
               f"scheme {scheme!r} is not supported; use one of {sorted(SCHEMES)}",
               {"field": "scheme"})
    network = _required_str(doc, "network")
    body = doc.get("payload")
    if body is None:
        missing("payload")
    if not isinstance(body, dict):
        wrong_type("payload", "an object")
    return PaymentPayload(header.version, scheme, network, _solana_payload(body))


def named_resource(header: PaymentHeader | None) -> str | None:
    """The product a v0 payment names, if any (carts excluded): where a refused payment
    sent to POST /verify is offered again."""
    body = header.document.get("payload") if header is not None else None
    resource = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(resource, str) or resource.startswith(CART_PREFIXES):
        return None
    return resource


def memo_rule(template: str, resource: str) -> re.Pattern[str] | None:
    """What a v0 payment's memo must look like: the shape the product's template gives
    (its nonce varies per quote, and quotes are not stored); None without a template."""
    return memo_matcher(template, {"resource": resource}) if template else None


def _solana_payload(body: Mapping[str, Any]) -> SolanaPayload:
    transaction = _required_str(body, "transaction", prefix="payload.")
    signature = _optional_str(body, "signature")
    if signature is not None:
        try:
            Signature.from_string(signature)
        except ValueError:
            refuse(Reason.INVALID_SIGNATURE_TEXT,
                   "payload.signature is not a base58 transaction signature",
                   {"field": "payload.signature"})
    resource_type = ResourceType.REGULAR
    raw_type = _optional_str(body, "resourceType")
    if raw_type is not None:
        try:
            resource_type = ResourceType(raw_type.strip().lower())
        except ValueError:
            refuse(Reason.INVALID_RESOURCE_TYPE,
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
        wrong_type("payload.metadata", "an object of strings")
    if len(value) > MAX_METADATA_ENTRIES:
        refuse(Reason.INVALID_METADATA,
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
            refuse(Reason.INVALID_METADATA,
                   f"payload.metadata[{key!r}] must be a string, number or boolean",
                   {"field": f"payload.metadata.{key}"})
    return MappingProxyType(out)


def _required_str(doc: Mapping[str, Any], key: str, *, prefix: str = "") -> str:
    value = doc.get(key)
    if value is None:
        missing(prefix + key)
    if not isinstance(value, str):
        wrong_type(prefix + key, "a string")
    if not value.strip():
        missing(prefix + key)
    return value


def _optional_str(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        wrong_type(f"payload.{key}", "a string")
    return value


def _optional_address(doc: Mapping[str, Any], key: str) -> str | None:
    value = _optional_str(doc, key)
    if value is None or not value.strip():
        return None
    try:
        return str(Pubkey.from_string(value.strip()))
    except ValueError:
        refuse(Reason.INVALID_ADDRESS, f"payload.{key} is not a base58 Solana address",
               {"field": f"payload.{key}"})
