"""createCoupon (admin): add a discount code (spec 23)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import CouponInput
from cedros_pay.schema.types.coupon import Coupon


async def create_coupon(info: strawberry.Info[Context], input: CouponInput) -> Coupon | None:
    coupon = input.to_domain(info.context.tenant)
    created = await info.context.services.catalog.create_coupon(coupon)
    info.context.loaders.product.clear_all()  # catalog coupons change product prices
    return Coupon.from_domain(created)
