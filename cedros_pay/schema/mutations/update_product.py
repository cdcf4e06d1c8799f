"""updateProduct (admin): replace a product's fields; `active: true` brings it back."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import ProductInput
from cedros_pay.schema.mutations.shared import priced_product
from cedros_pay.schema.types.product import Product


async def update_product(info: strawberry.Info[Context], input: ProductInput) -> Product | None:
    product = input.to_domain(info.context.tenant)
    updated = await info.context.services.catalog.update_product(product)
    return await priced_product(info.context, updated)
