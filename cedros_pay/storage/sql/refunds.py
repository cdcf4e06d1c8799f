"""Refund quotes in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update

from cedros_pay.core.models import RefundQuote
from cedros_pay.storage.repos import refund_status
from cedros_pay.storage.sql.base import SqlRepo, meta_out

_MUTABLE = ("recipient_wallet", "amount", "amount_asset", "token", "token_mint",
            "token_decimals", "reason", "metadata", "expires_at", "created_at")


class SqlRefundQuotes(SqlRepo):
    def _row(self, q: RefundQuote) -> dict[str, Any]:
        return {
            "id": q.id, "tenant_id": q.tenant_id, "original_purchase_id": q.original_purchase_id,
            "recipient_wallet": q.recipient_wallet, "amount": q.amount_atomic,
            "amount_asset": q.asset, "token": q.asset, "token_mint": q.token_mint,
            "token_decimals": q.token_decimals,
            "status": refund_status(q),
            "processed_by": q.processed_by, "processed_at": q.processed_at,
            "signature": q.signature, "reason": q.reason, "metadata": q.metadata,
            "created_at": q.created_at, "expires_at": q.expires_at,
        }

    @staticmethod
    def _model(r: Any) -> RefundQuote:
        return RefundQuote(
            id=r.id, tenant_id=r.tenant_id, original_purchase_id=r.original_purchase_id,
            recipient_wallet=r.recipient_wallet, amount_atomic=r.amount, asset=r.amount_asset,
            token_mint=r.token_mint or "", token_decimals=r.token_decimals or 0,
            reason=r.reason or "", metadata=meta_out(r.metadata), created_at=r.created_at,
            expires_at=r.expires_at, processed_by=r.processed_by, processed_at=r.processed_at,
            signature=r.signature,
        )

    async def save(self, quote: RefundQuote) -> None:
        await self.save_many([quote])

    async def save_many(self, quotes: Sequence[RefundQuote]) -> None:
        if not quotes:
            return
        t = self._t.refund_quotes
        stmt = self._insert(t)
        # Re-saving (a regenerated quote) may not touch a processed refund.
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.id],
            set_={c: stmt.excluded[c] for c in (*_MUTABLE, "status")},
            where=(t.c.tenant_id == stmt.excluded.tenant_id) & t.c.processed_at.is_(None),
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, [self._row(q) for q in quotes])

    async def create_once(self, quote: RefundQuote) -> RefundQuote:
        """One `INSERT ... SELECT ... WHERE NOT EXISTS`; on PostgreSQL under a transaction
        advisory lock on the purchase, since READ COMMITTED lets two such inserts both
        see no row (SQLite runs one writing statement at a time)."""
        t = self._t.refund_quotes
        row = self._row(quote)
        taken = select(t.c.id).where(t.c.tenant_id == quote.tenant_id,
                                     t.c.original_purchase_id == quote.original_purchase_id)
        values = select(*(literal(v, t.c[k].type).label(k) for k, v in row.items()))
        stmt = insert(t).from_select(list(row), values.where(~taken.exists()))
        async with self._engine.begin() as conn:
            if self._is_postgres:
                key = f"refund:{quote.tenant_id}:{quote.original_purchase_id}"
                await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
            await conn.execute(stmt)
            found = (await conn.execute(
                select(t).where(t.c.tenant_id == quote.tenant_id,
                                t.c.original_purchase_id == quote.original_purchase_id)
                .order_by(t.c.created_at.desc()).limit(1))).first()
        return self._model(found) if found is not None else quote

    async def transition(self, quote: RefundQuote, from_status: str) -> bool:
        t = self._t.refund_quotes
        row = self._row(quote)
        stmt = (
            update(t)
            .where(t.c.tenant_id == quote.tenant_id, t.c.id == quote.id,
                   t.c.processed_at.is_(None), t.c.status == from_status)
            .values({c: row[c] for c in (*_MUTABLE, "status")})
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete_if(self, tenant: str, refund_id: str, from_status: str) -> bool:
        t = self._t.refund_quotes
        stmt = delete(t).where(t.c.tenant_id == tenant, t.c.id == refund_id,
                               t.c.processed_at.is_(None), t.c.status == from_status)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def _one(self, *where: Any) -> RefundQuote | None:
        t = self._t.refund_quotes
        q = select(t).where(*where).order_by(t.c.created_at.desc()).limit(1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return self._model(row) if row else None

    async def get(self, tenant: str, refund_id: str) -> RefundQuote | None:
        t = self._t.refund_quotes
        return await self._one(t.c.tenant_id == tenant, t.c.id == refund_id)

    async def get_by_original_purchase(
        self, tenant: str, original_purchase_id: str
    ) -> RefundQuote | None:
        t = self._t.refund_quotes
        return await self._one(t.c.tenant_id == tenant,
                               t.c.original_purchase_id == original_purchase_id)

    async def list_pending(self, tenant: str) -> list[RefundQuote]:
        t = self._t.refund_quotes
        q = (select(t).where(t.c.tenant_id == tenant, t.c.processed_at.is_(None))
             .order_by(t.c.created_at, t.c.id))
        async with self._engine.connect() as conn:
            return [self._model(r) for r in await conn.execute(q)]

    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool:
        t = self._t.refund_quotes
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == refund_id, t.c.processed_at.is_(None))
            .values(processed_by=processed_by, signature=signature, processed_at=at,
                    status="processed")
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete(self, tenant: str, refund_id: str) -> bool:
        t = self._t.refund_quotes
        stmt = delete(t).where(t.c.tenant_id == tenant, t.c.id == refund_id)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete_expired_pending(self, before: datetime) -> int:
        t = self._t.refund_quotes
        stmt = delete(t).where(t.c.processed_at.is_(None), t.c.expires_at < before)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount
