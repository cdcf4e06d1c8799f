"""Subscriptions in memory."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime

from cedros_pay.core.models import Subscription, SubscriptionStatus
from cedros_pay.storage.repos import AlreadyExists, NotFound

_LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)


class MemorySubscriptions:
    def __init__(self) -> None:
        self._rows: dict[str, Subscription] = {}

    def _find(self, tenant: str | None,
              keep: Callable[[Subscription], bool]) -> list[Subscription]:
        found = [s for s in self._rows.values()
                 if (tenant is None or s.tenant_id == tenant) and keep(s)]
        found.sort(key=lambda s: s.id)
        found.sort(key=lambda s: s.created_at)
        return copy.deepcopy(found)

    async def create(self, sub: Subscription) -> None:
        taken = sub.stripe_subscription_id and any(
            s.stripe_subscription_id == sub.stripe_subscription_id for s in self._rows.values())
        if sub.id in self._rows or taken:
            raise AlreadyExists(f"subscription {sub.id!r} exists")
        self._rows[sub.id] = copy.deepcopy(sub)

    async def get(self, tenant: str, sub_id: str) -> Subscription | None:
        s = self._rows.get(sub_id)
        return copy.deepcopy(s) if s is not None and s.tenant_id == tenant else None

    async def update(self, sub: Subscription) -> None:
        old = self._rows.get(sub.id)
        if old is None or old.tenant_id != sub.tenant_id:
            raise NotFound(f"subscription {sub.id!r} not found")
        new = copy.deepcopy(sub)
        new.created_at = old.created_at
        self._rows[sub.id] = new

    async def replace_if_unchanged(self, sub: Subscription, seen: Subscription) -> bool:
        old = self._rows.get(sub.id)
        if old is None or old.tenant_id != sub.tenant_id or (
                old.status, old.updated_at, old.current_period_end) != (
                seen.status, seen.updated_at, seen.current_period_end):
            return False
        await self.update(sub)
        return True

    async def delete(self, tenant: str, sub_id: str, at: datetime) -> bool:
        return await self.update_status(tenant, sub_id, SubscriptionStatus.CANCELLED, at)

    async def get_by_wallet(
        self, tenant: str, wallet: str, product_id: str
    ) -> Subscription | None:
        found = self._find(tenant, lambda s: s.wallet == wallet
                           and s.product_id == product_id and s.status in _LIVE)
        return found[-1] if found else None

    async def get_by_stripe_subscription_id(
        self, tenant: str, stripe_sub_id: str
    ) -> Subscription | None:
        found = self._find(tenant, lambda s: s.stripe_subscription_id == stripe_sub_id)
        return found[0] if found else None

    async def list_by_stripe_customer_id(
        self, tenant: str, customer_id: str
    ) -> list[Subscription]:
        return self._find(tenant, lambda s: s.stripe_customer_id == customer_id)

    async def list_by_product(self, tenant: str, product_id: str) -> list[Subscription]:
        return self._find(tenant, lambda s: s.product_id == product_id)

    async def list_active(
        self, tenant: str, product_id: str | None = None
    ) -> list[Subscription]:
        return self._find(tenant, lambda s: s.status in _LIVE
                          and (product_id is None or s.product_id == product_id))

    async def list_expiring(
        self, tenant: str | None, before: datetime
    ) -> list[Subscription]:
        return self._find(tenant, lambda s: s.status in _LIVE and s.current_period_end < before)

    async def update_status(
        self, tenant: str, sub_id: str, status: SubscriptionStatus, at: datetime
    ) -> bool:
        s = self._rows.get(sub_id)
        if s is None or s.tenant_id != tenant:
            return False
        s.status, s.updated_at = status, at
        if status is SubscriptionStatus.CANCELLED:
            s.cancelled_at = at
        return True

    async def extend_period(
        self, tenant: str, sub_id: str, start: datetime, end: datetime, at: datetime
    ) -> bool:
        s = self._rows.get(sub_id)
        if s is None or s.tenant_id != tenant:
            return False
        s.current_period_start, s.current_period_end, s.updated_at = start, end, at
        return True
