"""Coupons in SQL (spec 23)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from cedros_pay.core.models import Coupon
from cedros_pay.storage.repos import AlreadyExists, NotFound
from cedros_pay.storage.sql.base import SqlRepo, meta_out

# `usage_count` is absent on purpose: only `increment_usage` moves it, atomically, so an
# admin edit based on an older read can never undo concurrent redemptions.
_COLUMNS = ("discount_type", "discount_value", "currency", "scope", "product_ids",
            "payment_method", "auto_apply", "applies_at", "usage_limit",
            "starts_at", "expires_at", "active", "metadata", "updated_at")


def _row(c: Coupon) -> dict[str, Any]:
    return {
        "code": c.code, "tenant_id": c.tenant_id, "discount_type": c.discount_type,
        "discount_value": float(c.discount_value), "currency": c.currency, "scope": c.scope,
        "product_ids": list(c.product_ids), "payment_method": c.payment_method,
        "auto_apply": c.auto_apply, "applies_at": c.applies_at, "usage_limit": c.usage_limit,
        "usage_count": c.usage_count, "starts_at": c.starts_at, "expires_at": c.expires_at,
        "active": c.active, "metadata": c.metadata, "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _model(r: Any) -> Coupon:
    return Coupon(
        code=r.code, tenant_id=r.tenant_id, discount_type=r.discount_type,
        # repr() gives the shortest decimal that round-trips the stored double.
        discount_value=Decimal(repr(float(r.discount_value))), currency=r.currency or "",
        scope=r.scope or "all", product_ids=list(r.product_ids or []),
        payment_method=r.payment_method or "", auto_apply=r.auto_apply,
        applies_at=r.applies_at or "catalog", usage_limit=r.usage_limit,
        usage_count=r.usage_count, starts_at=r.starts_at, expires_at=r.expires_at,
        active=r.active, metadata=meta_out(r.metadata), created_at=r.created_at,
        updated_at=r.updated_at,
    )


class SqlCoupons(SqlRepo):
    async def get(self, tenant: str, code: str) -> Coupon | None:
        t = self._t.coupons
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(t).where(t.c.tenant_id == tenant, t.c.code == code))).first()
        return _model(row) if row else None

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        t = self._t.coupons
        q = select(t).where(t.c.tenant_id == tenant)
        if not include_inactive:
            q = q.where(t.c.active.is_(True))
        async with self._engine.connect() as conn:
            return [_model(r) for r in await conn.execute(q.order_by(t.c.code))]

    async def create(self, coupon: Coupon) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(self._t.coupons).values(**_row(coupon)))
        except IntegrityError as exc:
            raise AlreadyExists(f"coupon {coupon.code!r} exists") from exc

    async def update(self, coupon: Coupon) -> None:
        t = self._t.coupons
        row = _row(coupon)
        stmt = (update(t).where(t.c.tenant_id == coupon.tenant_id, t.c.code == coupon.code)
                .values({c: row[c] for c in _COLUMNS}))
        async with self._engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                raise NotFound(f"coupon {coupon.code!r} not found")

    async def increment_usage(self, tenant: str, code: str) -> bool:
        t = self._t.coupons
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.code == code,
                   t.c.usage_limit.is_(None) | (t.c.usage_count < t.c.usage_limit))
            .values(usage_count=t.c.usage_count + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def release_usage(self, tenant: str, code: str) -> bool:
        t = self._t.coupons
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.code == code, t.c.usage_count > 0)
            .values(usage_count=t.c.usage_count - 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete(self, tenant: str, code: str) -> bool:
        t = self._t.coupons
        stmt = update(t).where(t.c.tenant_id == tenant, t.c.code == code).values(active=False)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1
