"""createCartQuote: price and store a multi-item cart for one x402 payment (spec 02)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cedros_pay.resolvers.carts import CartItemInput as CartItemRequest
from cedros_pay.resolvers.carts import CartQuoteInput as CartQuoteRequest
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_metadata, check_text
from cedros_pay.schema.types.cart import CartQuote


@strawberry.input
class CartItemInput:
    resource: str
    quantity: int = strawberry.field(default=1, description="Zero or less means one (spec 17).")
    metadata: JSON | None = None


@strawberry.input
class CartQuoteInput:
    items: list[CartItemInput]
    coupon_code: str | None = None
    metadata: JSON | None = None

    def to_domain(self) -> CartQuoteRequest:
        # Item count, quantity caps and unknown resources are the resolver's rules.
        return CartQuoteRequest(
            items=[CartItemRequest(resource_id=check_text(f"items[{i}].resource", item.resource),
                                   quantity=item.quantity,
                                   metadata=check_metadata(f"items[{i}].metadata", item.metadata))
                   for i, item in enumerate(self.items)],
            coupon_code=check_text("couponCode", self.coupon_code or "") or None,
            metadata=check_metadata("metadata", self.metadata),
        )


async def create_cart_quote(info: strawberry.Info[Context],
                            input: CartQuoteInput) -> CartQuote | None:
    result = await info.context.services.carts.create(info.context.tenant, input.to_domain())
    return CartQuote.from_domain(result)
