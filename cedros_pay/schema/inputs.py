"""Admin input types and the checks they make before a resolver sees them.

Every refusal is `invalid_field` (or `missing_field`) with `details.field` naming the
input field, so a dashboard can point at it. Amounts are atomic units in a base-10
string, like `Money.atomic`: GraphQL's Int is 32-bit and 2,148 USDC would not fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.assets import find_asset
from cedros_pay.core.catalog_rules import coupon_problems, has_price
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import is_product_id, is_solana_address
from cedros_pay.core.models import Coupon, Product, SubscriptionConfig
from cedros_pay.core.money import INT64_MAX
from cedros_pay.resolvers.coupon_check import MAX_CODE_LENGTH
from cedros_pay.schema.types.enums import (
    AppliesAt,
    BillingPeriod,
    CouponScope,
    DiscountType,
    PaymentMethod,
)

MAX_PRODUCT_ID = 255  # spec 17
MAX_DESCRIPTION = 1000
MAX_SHORT_TEXT = 255
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 1024
MAX_IDS = 1000
_ATOMIC = re.compile(r"\d{1,19}")
_COUPON_CODE = re.compile(r"[A-Za-z0-9_-]+")
# The input field each domain field of `core.catalog_rules` is read from.
_FIELDS = {"discount_value": "discountValue", "product_ids": "productIds",
           "expires_at": "expiresAt"}


def invalid(field: str, message: str) -> CedrosError:
    return CedrosError(ErrorCode.INVALID_FIELD, f"{field}: {message}", {"field": field})


def check_text(field: str, value: str, limit: int = MAX_SHORT_TEXT) -> str:
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value


def check_product_id(field: str, value: str) -> str:
    if not value.strip():
        raise CedrosError(ErrorCode.MISSING_FIELD, f"{field} is required", {"field": field})
    if not is_product_id(value) or value != value.strip():
        raise invalid(field, f"must be 1 to {MAX_PRODUCT_ID} characters without "
                             "surrounding spaces")
    return value


def check_product_ids(field: str, values: list[str]) -> list[str]:
    if len(values) > MAX_IDS:
        raise invalid(field, f"may list at most {MAX_IDS} ids")
    return [check_product_id(f"{field}[{i}]", v) for i, v in enumerate(values)]


def check_atomic(field: str, value: str | None) -> int | None:
    """A non-negative int64 amount from its string form; None or "" means no price."""
    if value is None or value == "":
        return None
    if not _ATOMIC.fullmatch(value) or int(value) > INT64_MAX:
        raise invalid(field, "must be a non-negative whole number of atomic units")
    return int(value)


def check_metadata(field: str, value: JSON | None) -> dict[str, str]:
    """Metadata is a flat map of strings (spec 05), bounded so it cannot bloat the store."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(field, "must be an object of strings")
    if len(value) > MAX_METADATA_ENTRIES:
        raise invalid(field, f"may hold at most {MAX_METADATA_ENTRIES} entries")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise invalid(field, "keys and values must be strings")
        if not key or len(key) > MAX_METADATA_KEY or len(item) > MAX_METADATA_VALUE:
            raise invalid(field, f"keys must be 1 to {MAX_METADATA_KEY} characters and "
                                 f"values at most {MAX_METADATA_VALUE}")
        out[key] = item
    return out


@strawberry.input(description="Recurring billing for a product (spec 05).")
class SubscriptionInput:
    billing_period: BillingPeriod
    billing_interval: int = 1
    trial_days: int = 0
    stripe_price_id: str = ""
    allow_x402: bool = False
    grace_period_hours: int = 0

    def to_domain(self) -> SubscriptionConfig:
        if self.billing_interval < 1:
            raise invalid("subscription.billingInterval", "must be at least 1")
        for name, number in (("trialDays", self.trial_days),
                             ("gracePeriodHours", self.grace_period_hours)):
            if number < 0:
                raise invalid(f"subscription.{name}", "must not be negative")
        return SubscriptionConfig(
            billing_period=self.billing_period.value, billing_interval=self.billing_interval,
            trial_days=self.trial_days,
            stripe_price_id=check_text("subscription.stripePriceId", self.stripe_price_id),
            allow_x402=self.allow_x402, grace_period_hours=self.grace_period_hours,
        )


@strawberry.input(description="A product as the admin writes it; update replaces every "
                              "field but the creation time.")
class ProductInput:
    id: strawberry.ID
    description: str = ""
    fiat_amount: str | None = strawberry.field(
        default=None, description="Card price in atomic units (cents), e.g. \"500\".")
    fiat_currency: str = "usd"
    stripe_price_id: str = ""
    crypto_amount: str | None = strawberry.field(
        default=None, description="x402 price in atomic units, e.g. \"5000000\" (5 USDC).")
    crypto_token: str = strawberry.field(
        default="", description="Token symbol (USDC, USDT, ...); empty: the server's.")
    crypto_account: str = strawberry.field(
        default="", description="Recipient token account; empty: the merchant's ATA.")
    memo_template: str = ""
    metadata: JSON | None = None
    active: bool = True
    subscription: SubscriptionInput | None = None

    def to_domain(self, tenant: str) -> Product:
        fiat = check_atomic("fiatAmount", self.fiat_amount)
        crypto = check_atomic("cryptoAmount", self.crypto_amount)
        currency = self.fiat_currency.strip().lower()
        asset = find_asset(currency) if currency else None
        if asset is None or not asset.is_stripe_currency():
            raise invalid("fiatCurrency", f"{self.fiat_currency!r} is not a card currency")
        token = self.crypto_token.strip().upper()
        if token:
            coin = find_asset(token)
            if coin is None or not coin.is_spl_token():
                raise invalid("cryptoToken", f"{self.crypto_token!r} is not a known token")
        if self.crypto_account and not is_solana_address(self.crypto_account):
            raise invalid("cryptoAccount", "must be a base58 Solana address")
        if not has_price(fiat, crypto, self.stripe_price_id):
            raise invalid("fiatAmount", "a product needs a fiatAmount, a cryptoAmount or a "
                                        "stripePriceId")
        return Product(
            id=check_product_id("id", str(self.id)), tenant_id=tenant,
            description=check_text("description", self.description, MAX_DESCRIPTION),
            fiat_amount=fiat, fiat_currency=currency,
            stripe_price_id=check_text("stripePriceId", self.stripe_price_id),
            crypto_amount=crypto, crypto_token=token, crypto_account=self.crypto_account,
            memo_template=check_text("memoTemplate", self.memo_template),
            metadata=check_metadata("metadata", self.metadata), active=self.active,
            subscription=self.subscription.to_domain() if self.subscription else None,
        )


@strawberry.input(description="A coupon as the admin writes it; update keeps the usage "
                              "count and the creation time.")
class CouponInput:
    code: str
    discount_type: DiscountType
    discount_value: Decimal = strawberry.field(
        description="Above 0: at most 100 for PERCENTAGE; major units of `currency` "
                    "for FIXED.")
    currency: str = strawberry.field(
        default="", description="For FIXED: USD, USDC, ... (empty: US dollars).")
    scope: CouponScope = CouponScope.ALL
    product_ids: list[str] = strawberry.field(default_factory=list)
    payment_method: PaymentMethod | None = strawberry.field(
        default=None, description="null: any payment method.")
    auto_apply: bool = False
    applies_at: AppliesAt = AppliesAt.CHECKOUT
    usage_limit: int | None = strawberry.field(default=None, description="null: unlimited.")
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    active: bool = True
    metadata: JSON | None = None

    def to_domain(self, tenant: str, usage_count: int = 0) -> Coupon:
        code = self.code.strip()
        if not code:
            raise CedrosError(ErrorCode.MISSING_FIELD, "code is required", {"field": "code"})
        if len(code) > MAX_CODE_LENGTH or not _COUPON_CODE.fullmatch(code):
            raise invalid("code", f"must be 1 to {MAX_CODE_LENGTH} letters, digits, _ or -")
        currency = self.currency.strip().upper()
        if currency and find_asset(currency) is None:
            raise invalid("currency", f"{self.currency!r} is not a known currency")
        ids = check_product_ids("productIds", self.product_ids)
        if self.usage_limit is not None and self.usage_limit < 0:
            raise invalid("usageLimit", "must not be negative")
        if not self.discount_value.is_finite():
            raise invalid("discountValue", "must be a number")
        for problem in coupon_problems(
                discount_type=self.discount_type.value, discount_value=self.discount_value,
                scope=self.scope.value, product_ids=ids, starts_at=self.starts_at,
                expires_at=self.expires_at):
            raise invalid(_FIELDS[problem.field], problem.message)
        return Coupon(
            code=code, tenant_id=tenant, discount_type=self.discount_type.value,
            discount_value=self.discount_value, currency=currency, scope=self.scope.value,
            product_ids=ids,
            payment_method=self.payment_method.value if self.payment_method else "",
            auto_apply=self.auto_apply, applies_at=self.applies_at.value,
            usage_limit=self.usage_limit, usage_count=usage_count,
            starts_at=self.starts_at, expires_at=self.expires_at, active=self.active,
            metadata=check_metadata("metadata", self.metadata),
        )
