"""createSubscriptionQuote: one x402 period of a subscription product (spec 03 quote)."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.subscription_plans import subscriptions_of
from cedros_pay.schema.types.subscription import SubscriptionQuoteResult


async def create_subscription_quote(info: strawberry.Info[Context], resource: str,
                                    interval: str, coupon_code: str | None = None,
                                    interval_days: int | None = None,
                                    ) -> SubscriptionQuoteResult:
    q = await subscriptions_of(info).quote(
        info.context.tenant, check_text("resource", resource.strip()),
        check_text("interval", interval), interval_days,
        check_text("couponCode", coupon_code or "") or None)
    return SubscriptionQuoteResult.from_domain(q)
