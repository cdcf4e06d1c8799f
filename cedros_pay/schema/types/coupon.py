"""Coupons (spec 23) and coupon validation results (spec 04 POST /coupons/validate)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TypeVar

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.models import Coupon as CouponModel
from cedros_pay.resolvers.coupon_check import CouponValidation as CouponValidationResult
from cedros_pay.schema.context import Context
from cedros_pay.schema.types.enums import AppliesAt, CouponScope, DiscountType, PaymentMethod
from cedros_pay.schema.types.product import Product

E = TypeVar("E", bound=Enum)


def enum_or_none(kind: type[E], value: str | None) -> E | None:
    """Stored strings to enums; empty means "any" or "not known" (spec 23)."""
    return kind(value.lower()) if value else None


def as_decimal(value: Decimal | float | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


async def coupon_products(root: strawberry.Parent[Coupon],
                          info: strawberry.Info[Context]) -> list[Product]:
    views = await info.context.loaders.product.load_found(root.product_ids)
    return [Product.from_domain(v) for v in views]


@strawberry.type(description="A discount code (admin view).")
class Coupon:
    code: str
    discount_type: DiscountType | None
    discount_value: Decimal = strawberry.field(
        description="A percentage (0-100), or a fixed amount in major units of `currency`.")
    currency: str
    scope: CouponScope | None
    product_ids: list[str]
    payment_method: PaymentMethod | None = strawberry.field(
        description="null: any payment method.")
    auto_apply: bool
    applies_at: AppliesAt | None
    usage_limit: int | None = strawberry.field(description="null: unlimited.")
    usage_count: int
    starts_at: datetime | None
    expires_at: datetime | None
    active: bool
    metadata: JSON
    created_at: datetime | None
    updated_at: datetime | None

    products: list[Product] = strawberry.field(
        resolver=coupon_products,
        description="The listed products that are on sale (SPECIFIC coupons).")

    @classmethod
    def from_domain(cls, c: CouponModel) -> Coupon:
        return cls(
            code=c.code, discount_type=enum_or_none(DiscountType, c.discount_type),
            discount_value=as_decimal(c.discount_value), currency=c.currency,
            scope=enum_or_none(CouponScope, c.scope), product_ids=list(c.product_ids),
            payment_method=enum_or_none(PaymentMethod, c.payment_method),
            auto_apply=c.auto_apply, applies_at=enum_or_none(AppliesAt, c.applies_at),
            usage_limit=c.usage_limit, usage_count=c.usage_count,
            starts_at=c.starts_at, expires_at=c.expires_at, active=c.active,
            metadata=JSON(dict(c.metadata)), created_at=c.created_at, updated_at=c.updated_at,
        )


@strawberry.type(description="Whether a code can be used, and if not, why (as a spec code).")
class CouponValidation:
    valid: bool
    code: str
    discount_type: DiscountType | None
    discount_value: Decimal
    scope: CouponScope | None
    applicable_products: list[str]
    payment_method: PaymentMethod | None
    expires_at: datetime | None
    remaining_uses: int | None = strawberry.field(description="null: unlimited.")
    error: str | None
    error_code: str | None

    @classmethod
    def from_domain(cls, v: CouponValidationResult) -> CouponValidation:
        return cls(
            valid=v.valid, code=v.code,
            discount_type=enum_or_none(DiscountType, v.discount_type),
            discount_value=as_decimal(v.discount_value),
            scope=enum_or_none(CouponScope, v.scope),
            applicable_products=list(v.applicable_products),
            payment_method=enum_or_none(PaymentMethod, v.payment_method),
            expires_at=v.expires_at, remaining_uses=v.remaining_uses,
            error=v.error or None, error_code=v.error_code.value if v.error_code else None,
        )
