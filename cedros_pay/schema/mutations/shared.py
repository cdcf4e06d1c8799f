"""What the product mutations share: answering with the product as the catalog prices it."""

from __future__ import annotations

from cedros_pay.core.models import Product as ProductModel
from cedros_pay.resolvers.catalog import ProductView
from cedros_pay.schema.context import Context
from cedros_pay.schema.types.product import Product


async def priced_product(ctx: Context, product: ProductModel) -> Product:
    """The written product with its current prices; an inactive one is not sold, so it
    has none."""
    ctx.loaders.product.clear_all()  # a write may change what this request loaded
    if not product.active:
        return Product.from_domain(ProductView(product=product, fiat=None, crypto=None))
    return Product.from_domain(await ctx.loaders.product.load(product.id))
