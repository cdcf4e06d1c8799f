"""createSubscriptionCheckout: a Stripe Checkout Session in subscription mode
(spec 03 /subscription/stripe-session)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cedros_pay.resolvers.subscriptions import StripeSessionInput
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_metadata, check_text
from cedros_pay.schema.subscription_plans import subscriptions_of
from cedros_pay.schema.types.subscription import SubscriptionCheckout


@strawberry.input
class SubscriptionCheckoutInput:
    resource: str
    interval: str
    interval_days: int | None = None
    trial_days: int | None = None
    customer_email: str | None = None
    metadata: JSON | None = None
    coupon_code: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None

    def to_domain(self) -> StripeSessionInput:
        return StripeSessionInput(
            resource=check_text("resource", self.resource.strip()),
            interval=check_text("interval", self.interval), interval_days=self.interval_days,
            trial_days=self.trial_days,
            customer_email=check_text("customerEmail", self.customer_email or ""),
            metadata=check_metadata("metadata", self.metadata),
            coupon_code=check_text("couponCode", self.coupon_code or ""),
            success_url=check_text("successUrl", self.success_url or "", 2048),
            cancel_url=check_text("cancelUrl", self.cancel_url or "", 2048))


async def create_subscription_checkout(info: strawberry.Info[Context],
                                       input: SubscriptionCheckoutInput,
                                       ) -> SubscriptionCheckout:
    created = await subscriptions_of(info).stripe_session(info.context.tenant,
                                                          input.to_domain())
    return SubscriptionCheckout(session_id=created.id, url=created.url)
