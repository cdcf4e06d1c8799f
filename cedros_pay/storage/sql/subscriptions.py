"""Subscriptions in SQL (spec 18)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from cedros_pay.core.models import Subscription, SubscriptionStatus
from cedros_pay.storage.repos import AlreadyExists, NotFound
from cedros_pay.storage.sql.base import SqlRepo, meta_out

_LIVE = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.TRIALING.value)


def _row(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id, "tenant_id": s.tenant_id, "product_id": s.product_id, "wallet": s.wallet,
        "stripe_customer_id": s.stripe_customer_id or None,
        # NULL, not "", so the UNIQUE constraint only binds real Stripe ids.
        "stripe_subscription_id": s.stripe_subscription_id or None,
        "payment_method": s.payment_method, "billing_period": s.billing_period,
        "billing_interval": s.billing_interval, "status": s.status.value,
        "current_period_start": s.current_period_start,
        "current_period_end": s.current_period_end, "trial_end": s.trial_end,
        "cancelled_at": s.cancelled_at, "cancel_at_period_end": s.cancel_at_period_end,
        "metadata": s.metadata, "created_at": s.created_at, "updated_at": s.updated_at,
    }


def _model(r: Any) -> Subscription:
    return Subscription(
        id=r.id, tenant_id=r.tenant_id, product_id=r.product_id, wallet=r.wallet or "",
        stripe_customer_id=r.stripe_customer_id or "",
        stripe_subscription_id=r.stripe_subscription_id or "",
        payment_method=r.payment_method or "", billing_period=r.billing_period or "",
        billing_interval=r.billing_interval or 1, status=SubscriptionStatus(r.status),
        current_period_start=r.current_period_start, current_period_end=r.current_period_end,
        trial_end=r.trial_end, cancelled_at=r.cancelled_at,
        cancel_at_period_end=r.cancel_at_period_end, metadata=meta_out(r.metadata),
        created_at=r.created_at, updated_at=r.updated_at,
    )


class SqlSubscriptions(SqlRepo):
    async def _all(self, *where: Any, newest_first: bool = False) -> list[Subscription]:
        t = self._t.subscriptions
        order = t.c.created_at.desc() if newest_first else t.c.created_at
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(t).where(*where).order_by(order, t.c.id))
            return [_model(r) for r in rows]

    async def _set(self, tenant: str, sub_id: str, **values: Any) -> bool:
        t = self._t.subscriptions
        stmt = update(t).where(t.c.tenant_id == tenant, t.c.id == sub_id).values(**values)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def create(self, sub: Subscription) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(self._t.subscriptions).values(**_row(sub)))
        except IntegrityError as exc:
            raise AlreadyExists(f"subscription {sub.id!r} exists") from exc

    async def get(self, tenant: str, sub_id: str) -> Subscription | None:
        t = self._t.subscriptions
        found = await self._all(t.c.tenant_id == tenant, t.c.id == sub_id)
        return found[0] if found else None

    async def update(self, sub: Subscription) -> None:
        row = _row(sub)
        del row["id"], row["tenant_id"], row["created_at"]
        if not await self._set(sub.tenant_id, sub.id, **row):
            raise NotFound(f"subscription {sub.id!r} not found")

    async def replace_if_unchanged(self, sub: Subscription, seen: Subscription) -> bool:
        t = self._t.subscriptions
        row = _row(sub)
        del row["id"], row["tenant_id"], row["created_at"]
        stmt = update(t).where(
            t.c.tenant_id == sub.tenant_id, t.c.id == sub.id,
            t.c.status == seen.status.value, t.c.updated_at == seen.updated_at,
            t.c.current_period_end == seen.current_period_end).values(**row)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete(self, tenant: str, sub_id: str, at: datetime) -> bool:
        return await self._set(tenant, sub_id, status=SubscriptionStatus.CANCELLED.value,
                               cancelled_at=at, updated_at=at)

    async def get_by_wallet(
        self, tenant: str, wallet: str, product_id: str
    ) -> Subscription | None:
        t = self._t.subscriptions
        found = await self._all(t.c.tenant_id == tenant, t.c.wallet == wallet,
                                t.c.product_id == product_id, t.c.status.in_(_LIVE),
                                newest_first=True)
        return found[0] if found else None

    async def get_by_stripe_subscription_id(
        self, tenant: str, stripe_sub_id: str
    ) -> Subscription | None:
        t = self._t.subscriptions
        found = await self._all(t.c.tenant_id == tenant,
                                t.c.stripe_subscription_id == stripe_sub_id)
        return found[0] if found else None

    async def list_by_stripe_customer_id(
        self, tenant: str, customer_id: str
    ) -> list[Subscription]:
        t = self._t.subscriptions
        return await self._all(t.c.tenant_id == tenant, t.c.stripe_customer_id == customer_id)

    async def list_by_product(self, tenant: str, product_id: str) -> list[Subscription]:
        t = self._t.subscriptions
        return await self._all(t.c.tenant_id == tenant, t.c.product_id == product_id)

    async def list_active(
        self, tenant: str, product_id: str | None = None
    ) -> list[Subscription]:
        t = self._t.subscriptions
        where = [t.c.tenant_id == tenant, t.c.status.in_(_LIVE)]
        if product_id is not None:
            where.append(t.c.product_id == product_id)
        return await self._all(*where)

    async def list_expiring(
        self, tenant: str | None, before: datetime
    ) -> list[Subscription]:
        t = self._t.subscriptions
        where = [t.c.status.in_(_LIVE), t.c.current_period_end < before]
        if tenant is not None:
            where.append(t.c.tenant_id == tenant)
        return await self._all(*where)

    async def update_status(
        self, tenant: str, sub_id: str, status: SubscriptionStatus, at: datetime
    ) -> bool:
        extra: dict[str, Any] = {}
        if status is SubscriptionStatus.CANCELLED:
            extra["cancelled_at"] = at
        return await self._set(tenant, sub_id, status=status.value, updated_at=at, **extra)

    async def extend_period(
        self, tenant: str, sub_id: str, start: datetime, end: datetime, at: datetime
    ) -> bool:
        return await self._set(tenant, sub_id, current_period_start=start,
                               current_period_end=end, updated_at=at)
