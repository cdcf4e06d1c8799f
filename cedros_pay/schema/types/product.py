"""Products with their effective prices per payment method (spec 04 GET /products)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.models import SubscriptionConfig
from cedros_pay.resolvers.catalog import CatalogView, ProductView
from cedros_pay.resolvers.pricing import Priced
from cedros_pay.schema.types.money import Money

NO_DISCOUNT = Decimal("0.00")


@strawberry.type(description="A price before and after coupons.")
class Price:
    original: Money
    effective: Money
    discount: Money
    discount_percent: Decimal = strawberry.field(
        description="The discount as a percentage of the original, to 2 places.")
    catalog_coupons: list[str] = strawberry.field(
        description="Codes applied to the product's price (auto-applied catalog coupons).")
    checkout_coupons: list[str] = strawberry.field(
        description="Codes applied at checkout (auto-applied or the one the client sent).")

    @classmethod
    def from_domain(cls, priced: Priced) -> Price:
        return cls(original=Money.from_domain(priced.original),
                   effective=Money.from_domain(priced.effective),
                   discount=Money.from_domain(priced.discount),
                   discount_percent=priced.discount_percent,
                   catalog_coupons=[c.code for c in priced.catalog],
                   checkout_coupons=[c.code for c in priced.checkout])

    @classmethod
    def maybe(cls, priced: Priced | None) -> Price | None:
        return cls.from_domain(priced) if priced is not None else None


@strawberry.type
class SubscriptionTerms:
    billing_period: str
    billing_interval: int
    trial_days: int
    stripe_price_id: str
    allow_x402: bool
    grace_period_hours: int

    @classmethod
    def maybe(cls, sub: SubscriptionConfig | None) -> SubscriptionTerms | None:
        if sub is None or not sub.billing_period:
            return None
        return cls(billing_period=sub.billing_period, billing_interval=sub.billing_interval,
                   trial_days=sub.trial_days, stripe_price_id=sub.stripe_price_id,
                   allow_x402=sub.allow_x402, grace_period_hours=sub.grace_period_hours)


@strawberry.type(description="A product and what it costs on each payment method now.")
class Product:
    id: strawberry.ID
    description: str
    active: bool
    fiat_currency: str
    stripe_price_id: str
    crypto_token: str
    fiat_price: Money | None = strawberry.field(
        description="The card price before coupons; null when not sold by card.")
    effective_fiat_price: Money | None = strawberry.field(
        description="The card price after auto-applied catalog coupons.")
    crypto_price: Money | None = strawberry.field(
        description="The x402 price before coupons; null when not sold for crypto.")
    effective_crypto_price: Money | None = strawberry.field(
        description="The x402 price after auto-applied catalog coupons.")
    fiat_coupon_codes: list[str] = strawberry.field(
        description="Catalog coupons in the effective card price.")
    crypto_coupon_codes: list[str] = strawberry.field(
        description="Catalog coupons in the effective x402 price.")
    fiat_discount_percent: Decimal = strawberry.field(
        description="How much the catalog coupons take off the card price, in percent.")
    crypto_discount_percent: Decimal = strawberry.field(
        description="How much the catalog coupons take off the x402 price, in percent.")
    metadata: JSON
    subscription: SubscriptionTerms | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, view: ProductView) -> Product:
        p, fiat, crypto = view.product, view.fiat, view.crypto
        return cls(
            id=strawberry.ID(p.id), description=p.description, active=p.active,
            fiat_currency=p.fiat_currency, stripe_price_id=p.stripe_price_id,
            crypto_token=crypto.effective.asset.code if crypto else p.crypto_token,
            fiat_price=Money.maybe(fiat.original if fiat else None),
            effective_fiat_price=Money.maybe(fiat.effective if fiat else None),
            crypto_price=Money.maybe(crypto.original if crypto else None),
            effective_crypto_price=Money.maybe(crypto.effective if crypto else None),
            fiat_coupon_codes=[c.code for c in fiat.catalog] if fiat else [],
            crypto_coupon_codes=[c.code for c in crypto.catalog] if crypto else [],
            fiat_discount_percent=fiat.discount_percent if fiat else NO_DISCOUNT,
            crypto_discount_percent=crypto.discount_percent if crypto else NO_DISCOUNT,
            metadata=JSON(dict(p.metadata)),
            subscription=SubscriptionTerms.maybe(p.subscription),
            created_at=p.created_at, updated_at=p.updated_at,
        )


def product_nodes(view: CatalogView) -> tuple[Product, ...]:
    """The listing's nodes. The catalog snapshot keeps them (`rendered`), so they are
    shared between requests: resolvers only read them."""
    return tuple([Product.from_domain(v) for v in view.products])
