"""The x402 wire objects, as plain frozen dataclasses (the SDK's `schemas/`).

- `PaymentHeader`: a decoded X-PAYMENT / PAYMENT-SIGNATURE document and its version;
- v0 (Cedros): `PaymentPayload` around a `SolanaPayload`;
- v1/v2 (official `exact` scheme): `ExactPayment`, `ExactRequirement` (one `accepts`
  entry), `PaymentRequired` (the PAYMENT-REQUIRED object);
- every version: `SettleResponse`, what X-PAYMENT-RESPONSE / PAYMENT-RESPONSE report.

Amounts are atomic integers, addresses base58 text, networks Cedros names (`devnet`); the
wire spelling of a network is chosen when encoding (`networks.wire_network`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from cedros_pay.x402.networks import caip2, v1_network

EXACT = "exact"
JSON_MIME = "application/json"


@dataclass(frozen=True, slots=True)
class PaymentHeader:
    """A decoded header of any version, before its version-specific shape is checked."""

    version: int
    document: Mapping[str, Any]


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
    """A version-0 (Cedros) payment; exact payments are given to the verifier in this
    shape too, with only the transaction and resource set."""

    x402_version: int
    scheme: str
    network: str
    payload: SolanaPayload


@dataclass(frozen=True, slots=True)
class ExactPayment:
    """A decoded exact-scheme payment of either protocol version."""

    version: int  # 1 or 2
    network: str  # as sent: CAIP-2 (v2) or legacy name (v1)
    transaction: str  # base64
    accepted: Mapping[str, Any] | None = None  # v2 only: the offer the client took
    resource: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExactRequirement:
    """One `accepts` entry of the exact scheme: pay `amount_atomic` of `asset` to the
    associated token account of the wallet `pay_to`, with `memo`, `fee_payer` paying."""

    network: str  # Cedros name (`devnet`); wire forms via caip2()/v1_network()
    asset: str  # mint
    amount_atomic: int
    pay_to: str  # the recipient's OWNER wallet: the transfer goes to its ATA for `asset`
    max_timeout_seconds: int
    fee_payer: str
    memo: str
    url: str
    description: str
    mime_type: str = JSON_MIME

    def entry(self) -> dict[str, Any]:
        """The v2 `accepts[]` object."""
        return {"scheme": EXACT, "network": caip2(self.network), "asset": self.asset,
                "amount": str(self.amount_atomic), "payTo": self.pay_to,
                "maxTimeoutSeconds": self.max_timeout_seconds,
                "extra": {"feePayer": self.fee_payer, "memo": self.memo}}

    def v1_entry(self) -> dict[str, Any]:
        """The same offer in v1's names (legacy network name, `maxAmountRequired`)."""
        return {"scheme": EXACT, "network": v1_network(self.network),
                "maxAmountRequired": str(self.amount_atomic), "resource": self.url,
                "description": self.description, "mimeType": self.mime_type,
                "payTo": self.pay_to, "maxTimeoutSeconds": self.max_timeout_seconds,
                "asset": self.asset, "extra": {"feePayer": self.fee_payer, "memo": self.memo}}


class PaymentRequired(NamedTuple):
    """The x402 v2 PaymentRequired object (the PAYMENT-REQUIRED header). Without a server
    wallet to pay fees there is no exact offer, and `accepts` is empty. (A named tuple:
    one is made on every 402, and a frozen dataclass costs several times as much.)"""

    url: str
    description: str = ""
    mime_type: str = JSON_MIME
    accepts: tuple[ExactRequirement, ...] = ()
    error: str | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "x402Version": 2,
            "resource": {"url": self.url, "description": self.description,
                         "mimeType": self.mime_type},
            "accepts": [r.entry() for r in self.accepts],
        }
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass(frozen=True, slots=True)
class SettleResponse:
    """The outcome of a settlement, in the version the client paid with (0, 1 or 2).
    `network` is the Cedros name; a refusal has `error_reason` (the spec code) and
    `error_message` and no transaction."""

    version: int
    network: str
    transaction: str = ""
    payer: str = ""
    error_reason: str | None = None
    error_message: str | None = None

    @property
    def success(self) -> bool:
        return self.error_reason is None
