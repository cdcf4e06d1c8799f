"""changeSubscription: move a Stripe subscription to another plan (spec 03 /subscription/change)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.subscription_plans import subscriptions_of
from cedros_pay.schema.types.subscription import SubscriptionChange


async def change_subscription(info: strawberry.Info[Context], subscription_id: str,
                              new_resource: str, proration_behavior: str = "create_prorations",
                              ) -> SubscriptionChange:
    change = await subscriptions_of(info).change(
        info.context.tenant, check_text("subscriptionId", subscription_id),
        check_text("newResource", new_resource), check_text("prorationBehavior",
                                                            proration_behavior))
    return SubscriptionChange.from_domain(change)
