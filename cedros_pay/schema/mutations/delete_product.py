"""deleteProduct (admin): stop selling a product; it stays on record (spec 23)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_product_id
from cedros_pay.schema.types.results import Deleted


async def delete_product(info: strawberry.Info[Context], id: strawberry.ID) -> Deleted | None:
    product_id = check_product_id("id", str(id))
    await info.context.services.catalog.delete_product(info.context.tenant, product_id)
    info.context.loaders.product.clear_all()
    return Deleted(id=product_id, deleted=True)
