"""createCheckoutSession: a Stripe Checkout session for one product (spec 02
POST /stripe-session; the same resolver as REST, coupon refusals in `extensions.code`)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cedros_pay.resolvers.checkout import SessionInput
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_metadata, check_text
from cedros_pay.schema.types.checkout import CheckoutSession


@strawberry.input
class CheckoutSessionInput:
    resource: str
    customer_email: str | None = None
    metadata: JSON | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    coupon_code: str | None = None

    def to_domain(self) -> SessionInput:
        return SessionInput(
            resource_id=check_text("resource", self.resource.strip()),
            customer_email=check_text("customerEmail", self.customer_email or ""),
            metadata=check_metadata("metadata", self.metadata),
            success_url=check_text("successUrl", self.success_url or "", 2048),
            cancel_url=check_text("cancelUrl", self.cancel_url or "", 2048),
            coupon_code=check_text("couponCode", self.coupon_code or "") or None)


async def create_checkout_session(info: strawberry.Info[Context],
                                  input: CheckoutSessionInput) -> CheckoutSession:
    session = await info.context.services.checkout.create_session(
        info.context.tenant, input.to_domain())
    return CheckoutSession.from_domain(session)
