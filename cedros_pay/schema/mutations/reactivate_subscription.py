"""reactivateSubscription: undo a cancellation at period end (spec 03 /subscription/reactivate)."""

from __future__ import annotations

import strawberry

from cedros_pay.resolvers.subscription_proofs import LifecycleProof
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.subscription_plans import subscriptions_of
from cedros_pay.schema.types.subscription import SubscriptionLifecycle


async def reactivate_subscription(info: strawberry.Info[Context],
                                  subscription_id: str) -> SubscriptionLifecycle:
    sub = await subscriptions_of(info).reactivate(
        info.context.tenant, check_text("subscriptionId", subscription_id),
        proof=LifecycleProof.of(info.context.credentials()))
    return SubscriptionLifecycle.from_domain(sub)
