"""createCartCheckout: one Stripe Checkout session for several products (spec 02
POST /cart/checkout; the same resolver as REST)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cedros_pay.resolvers.checkout import CartCheckoutInput as CartCheckoutRequest
from cedros_pay.resolvers.checkout import CartCheckoutItem
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_metadata, check_text
from cedros_pay.schema.types.checkout import CheckoutSession


@strawberry.input
class CartCheckoutItemInput:
    resource: str | None = None
    price_id: str | None = strawberry.field(
        default=None, description="A Stripe price id of the catalog (preferred).")
    quantity: int = strawberry.field(default=1, description="Zero or less means one.")
    metadata: JSON | None = None


@strawberry.input
class CartCheckoutInput:
    items: list[CartCheckoutItemInput]
    customer_email: str | None = None
    metadata: JSON | None = None
    coupon_code: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None

    def to_domain(self) -> CartCheckoutRequest:
        # Item count, quantity caps, the coupon table are the resolver's rules.
        return CartCheckoutRequest(
            items=[CartCheckoutItem(
                resource_id=check_text(f"items[{i}].resource", (item.resource or "").strip()),
                price_id=check_text(f"items[{i}].priceId", (item.price_id or "").strip()),
                quantity=item.quantity,
                metadata=check_metadata(f"items[{i}].metadata", item.metadata))
                for i, item in enumerate(self.items)],
            customer_email=check_text("customerEmail", self.customer_email or ""),
            metadata=check_metadata("metadata", self.metadata),
            coupon_code=check_text("couponCode", self.coupon_code or "") or None,
            success_url=check_text("successUrl", self.success_url or "", 2048),
            cancel_url=check_text("cancelUrl", self.cancel_url or "", 2048))


async def create_cart_checkout(info: strawberry.Info[Context],
                               input: CartCheckoutInput) -> CheckoutSession:
    session = await info.context.services.checkout.create_cart_session(
        info.context.tenant, input.to_domain())
    return CheckoutSession.from_domain(session)
