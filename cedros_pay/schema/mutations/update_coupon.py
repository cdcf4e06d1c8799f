"""updateCoupon (admin): replace a coupon's terms, keeping how often it was used."""

from __future__ import annotations

import strawberry

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import CouponInput
from cedros_pay.schema.types.coupon import Coupon


async def update_coupon(info: strawberry.Info[Context], input: CouponInput) -> Coupon | None:
    ctx = info.context
    catalog = ctx.services.catalog
    code = input.code.strip()
    current = next((c for c in await catalog.list_coupons(ctx.tenant, include_inactive=True)
                    if c.code == code), None)
    if current is None:
        raise CedrosError(ErrorCode.COUPON_NOT_FOUND, f"coupon {code!r} not found",
                          {"code": code})
    updated = await catalog.update_coupon(input.to_domain(ctx.tenant, current.usage_count))
    ctx.loaders.product.clear_all()
    return Coupon.from_domain(updated)
