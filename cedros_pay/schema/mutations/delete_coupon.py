"""deleteCoupon (admin): retire a code; it stays on record, inactive (spec 23)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.types.results import Deleted


async def delete_coupon(info: strawberry.Info[Context], code: str) -> Deleted | None:
    await info.context.services.catalog.delete_coupon(info.context.tenant,
                                                      check_text("code", code.strip()))
    info.context.loaders.product.clear_all()
    return Deleted(id=code.strip(), deleted=True)
