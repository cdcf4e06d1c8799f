"""Reading and naming x402 protocol headers: the protocol facts REST adapters need, kept
behind the resolver layer so adapters never reach into integrations (DESIGN §2)."""

from __future__ import annotations

from typing import Any

from cedros_pay.core.errors import CedrosError
from cedros_pay.integrations.solana import exact
from cedros_pay.integrations.solana.payload import decode_payment_header


def payment_version(x_payment: str | None, payment_signature: str | None) -> int:
    """The protocol version a client paid (or tried to pay) with; 0 when unreadable."""
    if payment_signature:
        return 2
    try:
        return decode_payment_header(x_payment or "").version
    except CedrosError:
        return 0


def named_resource(x_payment: str | None) -> str | None:
    """The product a v0 payment names, if any (carts excluded)."""
    try:
        doc = decode_payment_header(x_payment or "").document
    except CedrosError:
        return None
    body = doc.get("payload")
    resource = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(resource, str) or resource.startswith(("cart:", "cart_")):
        return None
    return resource


def wire_network(network: str, version: int) -> str:
    """How protocol `version` names a Solana network (CAIP-2 for v2, v1's own names)."""
    return exact.caip2(network) if version == 2 else exact.v1_network(network)


def payment_required_document(requirements: list[Any], *, url: str, description: str,
                              mime_type: str, error: str | None) -> dict[str, Any]:
    """The x402 v2 PaymentRequired object (the PAYMENT-REQUIRED header's JSON)."""
    return exact.payment_required(requirements, url=url, description=description,
                                  mime_type=mime_type, error=error)
