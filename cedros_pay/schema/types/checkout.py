"""A Stripe Checkout session as the checkout mutations answer it (spec 02 shapes)."""

from __future__ import annotations

import strawberry

from cedros_pay.resolvers.checkout import CheckoutSession as CheckoutSessionResult


@strawberry.type(description="A Stripe Checkout session: send the customer to `url`.")
class CheckoutSession:
    session_id: str
    url: str
    total_items: int = strawberry.field(description="The sum of the quantities bought.")

    @classmethod
    def from_domain(cls, s: CheckoutSessionResult) -> CheckoutSession:
        return cls(session_id=s.session_id, url=s.url, total_items=s.total_items)
