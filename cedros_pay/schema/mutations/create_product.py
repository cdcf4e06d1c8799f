"""createProduct (admin): add a product to the catalog (spec 23)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import ProductInput
from cedros_pay.schema.mutations.shared import priced_product
from cedros_pay.schema.types.product import Product


async def create_product(info: strawberry.Info[Context], input: ProductInput) -> Product | None:
    product = input.to_domain(info.context.tenant)
    created = await info.context.services.catalog.create_product(product)
    return await priced_product(info.context, created)
