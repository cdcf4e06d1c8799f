"""GraphQL shapes of subscriptions (issue 13): the same values spec 03's REST bodies carry."""

from __future__ import annotations

from datetime import datetime

import strawberry

from cedros_pay.core.models import Subscription as SubscriptionModel
from cedros_pay.resolvers.subscription_events import public_id, rail_of, user_of
from cedros_pay.resolvers.subscriptions import (
    Activation,
    Change,
    StatusView,
    SubscriptionQuote,
)
from cedros_pay.schema.types.quote import Quote


@strawberry.type(description="Spec 03 status: `active` is true for active, trialing and "
                             "past_due within the period (x402: plus the grace period).")
class SubscriptionStatus:
    active: bool
    status: str
    expires_at: datetime
    current_period_end: datetime
    interval: str
    cancel_at_period_end: bool

    @classmethod
    def from_domain(cls, v: StatusView) -> SubscriptionStatus:
        s = v.subscription
        return cls(active=v.active, status=s.status.value, expires_at=s.current_period_end,
                   current_period_end=s.current_period_end, interval=v.interval,
                   cancel_at_period_end=s.cancel_at_period_end)


@strawberry.type(description="A subscription; `id` is Stripe's `sub_…` id when Stripe bills it.")
class SubscriptionRecord:
    id: strawberry.ID
    product_id: str
    user_id: str
    rail: str
    status: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    billing_period: str
    billing_interval: int
    created_at: datetime

    @classmethod
    def from_domain(cls, s: SubscriptionModel) -> SubscriptionRecord:
        return cls(id=strawberry.ID(public_id(s)), product_id=s.product_id, user_id=user_of(s),
                   rail=rail_of(s), status=s.status.value,
                   current_period_start=s.current_period_start,
                   current_period_end=s.current_period_end,
                   cancel_at_period_end=s.cancel_at_period_end,
                   billing_period=s.billing_period, billing_interval=s.billing_interval,
                   created_at=s.created_at)


@strawberry.type
class SubscriptionPeriod:
    interval: str
    interval_days: int | None
    duration_seconds: int
    period_start: datetime
    period_end: datetime


@strawberry.type(description="One x402 period: the product's own quote and what it buys.")
class SubscriptionQuoteResult:
    requirement: Quote
    subscription: SubscriptionPeriod

    @classmethod
    def from_domain(cls, q: SubscriptionQuote) -> SubscriptionQuoteResult:
        t = q.term
        return cls(requirement=Quote.from_domain(q.quote), subscription=SubscriptionPeriod(
            interval=t.word, interval_days=t.interval if t.word == "custom" else None,
            duration_seconds=t.duration_seconds(q.period_start), period_start=q.period_start,
            period_end=q.period_end))


@strawberry.type(description="Spec 03 activate: `quote` is set when no qualifying payment "
                             "came with the request.")
class X402Activation:
    subscription_id: str
    product_id: str
    wallet: str
    status: str
    current_period_start: datetime
    current_period_end: datetime
    billing_period: str
    billing_interval: int
    quote: Quote | None

    @classmethod
    def from_domain(cls, a: Activation) -> X402Activation:
        s = a.subscription
        return cls(subscription_id=public_id(s) if s else "", product_id=a.product.id,
                   wallet=a.wallet, status=s.status.value if s else "inactive",
                   current_period_start=s.current_period_start if s else a.period_start,
                   current_period_end=s.current_period_end if s else a.period_end,
                   billing_period=a.term.period.value, billing_interval=a.term.interval,
                   quote=Quote.from_domain(a.quote) if a.quote is not None else None)


@strawberry.type
class SubscriptionCheckout:
    session_id: str
    url: str


@strawberry.type
class SubscriptionLifecycle:
    success: bool
    subscription_id: str
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime

    @classmethod
    def from_domain(cls, s: SubscriptionModel) -> SubscriptionLifecycle:
        return cls(success=True, subscription_id=public_id(s), status=s.status.value,
                   cancel_at_period_end=s.cancel_at_period_end,
                   current_period_end=s.current_period_end)


@strawberry.type
class SubscriptionChange:
    success: bool
    subscription_id: str
    previous_resource: str
    new_resource: str
    status: str
    current_period_end: datetime
    proration_behavior: str

    @classmethod
    def from_domain(cls, c: Change) -> SubscriptionChange:
        s = c.subscription
        return cls(success=True, subscription_id=public_id(s),
                   previous_resource=c.previous_resource, new_resource=s.product_id,
                   status=s.status.value, current_period_end=s.current_period_end,
                   proration_behavior=c.proration_behavior)
