"""Domain records shared by resolvers and storage (specs 05, 06, 08, 23).

Plain dataclasses: amounts are integer atomic units beside an asset code, times are
timezone-aware UTC. Catalog records (Product, Coupon, SubscriptionConfig) are frozen and
their containers typed read-only: caches and sources hand out one shared instance to every
request instead of a private copy, and a change is a new record (`dataclasses.replace`).
Storage backends translate these to rows or documents; nothing here knows about JSON
wire shapes (those live in the adapters' renderers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

DEFAULT_TENANT = "default"


@dataclass(slots=True, kw_only=True)
class CartItem:
    resource_id: str
    quantity: int
    price_atomic: int
    asset: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class CartQuote:
    id: str
    items: list[CartItem]
    total_atomic: int
    asset: str
    created_at: datetime
    expires_at: datetime
    tenant_id: str = DEFAULT_TENANT
    metadata: dict[str, str] = field(default_factory=dict)
    wallet_paid_by: str | None = None

    def is_expired_at(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def is_paid(self) -> bool:
        return bool(self.wallet_paid_by)


@dataclass(slots=True, kw_only=True)
class RefundQuote:
    """A refund request. Its status is derived from state, never stored (spec 06)."""

    id: str
    original_purchase_id: str
    recipient_wallet: str
    amount_atomic: int
    asset: str
    created_at: datetime
    expires_at: datetime
    tenant_id: str = DEFAULT_TENANT
    token_mint: str = ""
    token_decimals: int = 0
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    processed_by: str | None = None
    processed_at: datetime | None = None
    signature: str | None = None

    def is_expired_at(self, now: datetime) -> bool:
        return now >= self.expires_at

    @property
    def is_processed(self) -> bool:
        return self.processed_at is not None and bool(self.signature)


@dataclass(slots=True, kw_only=True)
class PaymentTransaction:
    """One settled payment; its signature is the global replay-protection key (spec 13)."""

    signature: str
    resource_id: str
    wallet: str
    amount_atomic: int
    asset: str
    created_at: datetime
    tenant_id: str = DEFAULT_TENANT
    metadata: dict[str, str] = field(default_factory=dict)


STRIPE_SIGNATURE_PREFIX = "stripe:"  # card payments are recorded as stripe:{session_id}


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentFilter:
    """Which recorded payments an admin listing covers; unset fields match everything."""

    resource_id: str | None = None
    wallet: str | None = None
    method: str | None = None  # "x402" | "stripe"
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class AssetTotal:
    asset: str
    count: int
    amount_atomic: int


@dataclass(slots=True, kw_only=True)
class AdminNonce:
    id: str
    purpose: str
    created_at: datetime
    expires_at: datetime
    tenant_id: str = DEFAULT_TENANT
    consumed_at: datetime | None = None


class NonceOutcome(StrEnum):
    """Why a nonce consumption did or did not succeed; callers map these to error codes."""

    CONSUMED = "consumed"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    ALREADY_USED = "already_used"
    WRONG_PURPOSE = "wrong_purpose"


class WebhookStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(slots=True, kw_only=True)
class PendingWebhook:
    id: str
    url: str
    payload: str
    event_type: str
    created_at: datetime
    tenant_id: str = DEFAULT_TENANT
    headers: dict[str, str] = field(default_factory=dict)
    event_id: str = ""  # the payload's `eventId`: the receiver's deduplication key
    status: WebhookStatus = WebhookStatus.PENDING
    attempts: int = 0
    max_attempts: int = 5
    last_error: str = ""
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class StoredResponse:
    """A cached HTTP response for an idempotency key (spec 10)."""

    status: int
    body: bytes
    created_at: datetime
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""  # SHA-256 of the request it answered (rest/middleware/idempotency)


class StripeSessionStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"


@dataclass(slots=True, kw_only=True)
class StripeSession:
    id: str
    resource_id: str
    amount_cents: int
    currency: str
    created_at: datetime
    tenant_id: str = DEFAULT_TENANT
    status: StripeSessionStatus = StripeSessionStatus.PENDING
    customer_email: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionConfig:
    billing_period: str = ""
    billing_interval: int = 1
    trial_days: int = 0
    stripe_price_id: str = ""
    allow_x402: bool = False
    grace_period_hours: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """A catalog entry; prices are atomic amounts with their asset code (spec 23)."""

    id: str
    description: str = ""
    tenant_id: str = DEFAULT_TENANT
    fiat_amount: int | None = None
    fiat_currency: str = ""
    stripe_price_id: str = ""
    crypto_amount: int | None = None
    crypto_token: str = ""
    crypto_account: str = ""
    memo_template: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    active: bool = True
    subscription: SubscriptionConfig | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_subscription(self) -> bool:
        return self.subscription is not None and bool(self.subscription.billing_period)


@dataclass(frozen=True, slots=True, kw_only=True)
class Coupon:
    """A discount code (spec 23).

    `discount_value` is a percentage (0-100) or a fixed amount in major units; it is a
    Decimal so that e.g. 0.1 stays exactly one tenth when turned into atomic units.
    """

    code: str
    discount_type: str
    discount_value: Decimal
    tenant_id: str = DEFAULT_TENANT
    currency: str = ""
    scope: str = "all"
    product_ids: Sequence[str] = field(default_factory=list)
    payment_method: str = ""
    auto_apply: bool = False
    applies_at: str = "catalog"
    usage_limit: int | None = None
    usage_count: int = 0
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    active: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"
    UNPAID = "unpaid"
    EXPIRED = "expired"

    @classmethod
    def parse(cls, value: str) -> SubscriptionStatus:
        """Accept Stripe's `canceled` spelling; we store and emit `cancelled` (DESIGN §7)."""
        return cls("cancelled" if value == "canceled" else value)


@dataclass(slots=True, kw_only=True)
class Subscription:
    id: str
    product_id: str
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    created_at: datetime
    updated_at: datetime
    tenant_id: str = DEFAULT_TENANT
    wallet: str = ""
    stripe_customer_id: str = ""
    stripe_subscription_id: str = ""
    payment_method: str = ""
    billing_period: str = ""
    billing_interval: int = 1
    trial_end: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_at_period_end: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def is_active_at(self, now: datetime) -> bool:
        """Active or trialing, and the current period has not ended."""
        live = self.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
        return live and now < self.current_period_end
