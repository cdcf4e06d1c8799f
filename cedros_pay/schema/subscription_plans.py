"""Subscription queries (issue 13): `subscriptionStatus` and admin `subscriptions`, on the
resolver REST uses."""

from __future__ import annotations

import strawberry

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Subscription as SubscriptionModel
from cedros_pay.resolvers.subscriptions import SubscriptionFilter, Subscriptions
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_text
from cedros_pay.schema.pagination import Connection, paginate
from cedros_pay.schema.types.subscription import SubscriptionRecord, SubscriptionStatus


def subscriptions_of(info: strawberry.Info[Context]) -> Subscriptions:
    subs = info.context.services.subscriptions
    if subs is None:
        raise CedrosError(ErrorCode.NOT_FOUND, "subscriptions are not enabled on this server")
    return subs


@strawberry.input
class SubscriptionFilterInput:
    status: str | None = None
    product_id: str | None = None
    rail: str | None = None


async def subscription_status(info: strawberry.Info[Context], user_id: str,
                              resource: str) -> SubscriptionStatus | None:
    view = await subscriptions_of(info).status(
        info.context.tenant, check_text("userId", user_id), check_text("resource", resource))
    return SubscriptionStatus.from_domain(view)


def _key(s: SubscriptionModel) -> str:
    return f"{s.created_at.strftime('%Y-%m-%dT%H:%M:%S.%f')}|{s.id}"


async def subscriptions(info: strawberry.Info[Context], first: int | None = None,
                        after: str | None = None,
                        filter: SubscriptionFilterInput | None = None,
                        ) -> Connection[SubscriptionRecord] | None:
    f = filter or SubscriptionFilterInput()
    rows = await subscriptions_of(info).listing(info.context.tenant, SubscriptionFilter(
        status=f.status, product_id=check_text("filter.productId", f.product_id or "") or None,
        rail=f.rail))
    return paginate(rows, kind="subscription", key=_key, first=first, after=after,
                    node=SubscriptionRecord.from_domain)
