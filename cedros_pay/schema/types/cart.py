"""Carts: a fresh cart quote (spec 02 POST /cart/quote) and a stored cart (spec 06)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.assets import get_asset
from cedros_pay.core.models import CartItem as CartItemModel
from cedros_pay.core.models import CartQuote as CartModel
from cedros_pay.core.money import Money as CoreMoney
from cedros_pay.resolvers.carts import CartLine as CartLineResult
from cedros_pay.resolvers.carts import CartQuoteResult
from cedros_pay.schema.context import Context
from cedros_pay.schema.types.money import Money
from cedros_pay.schema.types.product import Product
from cedros_pay.schema.types.quote import X402Requirement


async def current_product(root: strawberry.Parent[CartQuoteLine | CartItem],
                          info: strawberry.Info[Context]) -> Product | None:
    """The product as the catalog shows it now (batched and cached per request)."""
    found = await info.context.loaders.product.load_found([root.resource])
    return Product.from_domain(found[0]) if found else None


@strawberry.type(description="One line of a cart quote, priced per unit on x402.")
class CartQuoteLine:
    resource: str
    quantity: int
    unit_price: Money = strawberry.field(description="After catalog coupons.")
    original_unit_price: Money
    description: str
    applied_coupons: list[str]

    product: Product | None = strawberry.field(
        resolver=current_product, description="The product now; null if no longer sold.")

    @classmethod
    def from_domain(cls, line: CartLineResult) -> CartQuoteLine:
        return cls(resource=line.product.id, quantity=line.quantity,
                   unit_price=Money.from_domain(line.unit.effective),
                   original_unit_price=Money.from_domain(line.unit.original),
                   description=line.product.description,
                   applied_coupons=[c.code for c in line.unit.catalog])


@strawberry.type(description="A stored cart quote: pay `quote` once to buy every line.")
class CartQuote:
    cart_id: str
    items: list[CartQuoteLine]
    subtotal: Money = strawberry.field(
        description="The lines after catalog coupons, before checkout coupons.")
    total: Money = strawberry.field(description="What the payment must be, exactly.")
    checkout_coupons: list[str]
    metadata: JSON
    expires_at: datetime
    quote: X402Requirement

    @classmethod
    def from_domain(cls, result: CartQuoteResult) -> CartQuote:
        cart = result.cart
        return cls(
            cart_id=cart.id, items=[CartQuoteLine.from_domain(x) for x in result.lines],
            subtotal=Money.from_domain(result.total.original),
            total=Money.from_domain(result.total.effective),
            checkout_coupons=[c.code for c in result.total.checkout],
            metadata=JSON(dict(cart.metadata)), expires_at=cart.expires_at,
            quote=X402Requirement.from_domain(result.requirement),
        )


@strawberry.type
class CartItem:
    resource: str
    quantity: int
    unit_price: Money = strawberry.field(description="The unit price frozen in the quote.")
    metadata: JSON

    product: Product | None = strawberry.field(
        resolver=current_product, description="The product now; null if no longer sold.")

    @classmethod
    def from_domain(cls, item: CartItemModel) -> CartItem:
        return cls(resource=item.resource_id, quantity=item.quantity,
                   unit_price=Money.from_domain(
                       CoreMoney(get_asset(item.asset), item.price_atomic)),
                   metadata=JSON(dict(item.metadata)))


@strawberry.type(description="A stored cart and whether it has been paid.")
class Cart:
    id: str
    items: list[CartItem]
    total: Money
    metadata: JSON
    created_at: datetime
    expires_at: datetime
    expired: bool
    paid: bool
    paid_by: str | None = strawberry.field(description="The paying wallet, once paid.")

    @classmethod
    def from_domain(cls, cart: CartModel, now: datetime) -> Cart:
        return cls(
            id=cart.id, items=[CartItem.from_domain(i) for i in cart.items],
            total=Money.from_domain(CoreMoney(get_asset(cart.asset), cart.total_atomic)),
            metadata=JSON(dict(cart.metadata)), created_at=cart.created_at,
            expires_at=cart.expires_at, expired=cart.is_expired_at(now),
            paid=cart.is_paid, paid_by=cart.wallet_paid_by,
        )
