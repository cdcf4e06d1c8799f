"""Cart quotes in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from cedros_pay.core.models import CartItem, CartQuote
from cedros_pay.storage.sql.base import SqlRepo, meta_out


def _items_in(items: Sequence[CartItem]) -> list[dict[str, Any]]:
    return [
        {"resource": i.resource_id, "quantity": i.quantity, "price_atomic": i.price_atomic,
         "asset": i.asset, "metadata": i.metadata}
        for i in items
    ]


def _items_out(raw: Any) -> list[CartItem]:
    return [
        CartItem(resource_id=i["resource"], quantity=int(i["quantity"]),
                 price_atomic=int(i["price_atomic"]), asset=i["asset"],
                 metadata=meta_out(i.get("metadata")))
        for i in raw or []
    ]


class SqlCartQuotes(SqlRepo):
    def _row(self, q: CartQuote) -> dict[str, Any]:
        return {
            "id": q.id, "tenant_id": q.tenant_id, "items": _items_in(q.items),
            "total_amount": q.total_atomic, "total_asset": q.asset, "metadata": q.metadata,
            "created_at": q.created_at, "expires_at": q.expires_at,
            "wallet_paid_by": q.wallet_paid_by,
        }

    @staticmethod
    def _model(r: Any) -> CartQuote:
        return CartQuote(
            id=r.id, tenant_id=r.tenant_id, items=_items_out(r.items),
            total_atomic=r.total_amount, asset=r.total_asset, metadata=meta_out(r.metadata),
            created_at=r.created_at, expires_at=r.expires_at, wallet_paid_by=r.wallet_paid_by,
        )

    async def save(self, quote: CartQuote) -> None:
        await self.save_many([quote])

    async def save_many(self, quotes: Sequence[CartQuote]) -> None:
        if not quotes:
            return
        t = self._t.cart_quotes
        stmt = self._insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.id],
            set_={c: stmt.excluded[c] for c in ("items", "total_amount", "total_asset",
                                                  "metadata", "expires_at")},
            where=t.c.tenant_id == stmt.excluded.tenant_id,
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, [self._row(q) for q in quotes])

    async def get(self, tenant: str, cart_id: str) -> CartQuote | None:
        found = await self.get_many(tenant, [cart_id])
        return found[0] if found else None

    async def get_many(self, tenant: str, cart_ids: Sequence[str]) -> list[CartQuote]:
        if not cart_ids:
            return []
        t = self._t.cart_quotes
        q = select(t).where(t.c.tenant_id == tenant, t.c.id.in_(list(cart_ids)))
        async with self._engine.connect() as conn:
            rows = {r.id: self._model(r) for r in await conn.execute(q)}
        return [rows[i] for i in cart_ids if i in rows]

    def _unpaid(self) -> Any:
        t = self._t.cart_quotes
        return t.c.wallet_paid_by.is_(None) | (t.c.wallet_paid_by == "")

    async def _update_one(self, stmt: Any) -> bool:
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        t = self._t.cart_quotes
        return await self._update_one(
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == cart_id, self._unpaid())
            .values(wallet_paid_by=wallet, claimed_by=None, claim_expires_at=None))

    async def claim(self, tenant: str, cart_id: str, holder: str, now: datetime,
                    lease: timedelta) -> bool:
        if not holder:
            raise ValueError("a cart claim needs a holder")
        t = self._t.cart_quotes
        free = or_(t.c.claimed_by.is_(None), t.c.claim_expires_at <= now,
                   t.c.claimed_by == holder)
        return await self._update_one(
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == cart_id, self._unpaid(), free)
            .values(claimed_by=holder, claim_expires_at=now + lease))

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        t = self._t.cart_quotes
        return await self._update_one(
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == cart_id, t.c.claimed_by == holder)
            .values(claimed_by=None, claim_expires_at=None))

    async def has_access(self, tenant: str, cart_id: str, wallet: str) -> bool:
        t = self._t.cart_quotes
        q = select(t.c.id).where(t.c.tenant_id == tenant, t.c.id == cart_id,
                                 t.c.wallet_paid_by == wallet)
        async with self._engine.connect() as conn:
            return (await conn.execute(q)).first() is not None

    async def delete_expired(self, before: datetime) -> int:
        t = self._t.cart_quotes
        stmt = delete(t).where(t.c.expires_at < before, self._unpaid(),
                               t.c.claim_expires_at.is_(None) | (t.c.claim_expires_at < before))
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount
