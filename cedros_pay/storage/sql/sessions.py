"""Stripe checkout sessions in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from cedros_pay.core.models import StripeSession, StripeSessionStatus
from cedros_pay.storage.sql.base import SqlRepo, meta_out


class SqlStripeSessions(SqlRepo):
    async def save(self, session: StripeSession) -> None:
        s = session
        t = self._t.sessions
        row: dict[str, Any] = {
            "id": s.id, "tenant_id": s.tenant_id, "resource_id": s.resource_id,
            "status": s.status.value, "amount_cents": s.amount_cents, "currency": s.currency,
            "customer_email": s.customer_email, "metadata": s.metadata,
            "created_at": s.created_at, "completed_at": s.completed_at,
        }
        stmt = self._insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.id],
            set_={c: stmt.excluded[c] for c in ("resource_id", "status", "amount_cents",
                                                  "currency", "customer_email", "metadata",
                                                  "completed_at")},
            where=t.c.tenant_id == stmt.excluded.tenant_id,
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, row)

    async def get(self, tenant: str, session_id: str) -> StripeSession | None:
        t = self._t.sessions
        q = select(t).where(t.c.tenant_id == tenant, t.c.id == session_id)
        async with self._engine.connect() as conn:
            r = (await conn.execute(q)).first()
        if r is None:
            return None
        return StripeSession(
            id=r.id, tenant_id=r.tenant_id, resource_id=r.resource_id or "",
            status=StripeSessionStatus(r.status), amount_cents=r.amount_cents or 0,
            currency=r.currency or "", customer_email=r.customer_email or "",
            metadata=meta_out(r.metadata), created_at=r.created_at, completed_at=r.completed_at,
        )

    async def mark_completed(self, tenant: str, session_id: str, at: datetime) -> bool:
        t = self._t.sessions
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == session_id,
                   t.c.status == StripeSessionStatus.PENDING.value)
            .values(status=StripeSessionStatus.COMPLETED.value, completed_at=at)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1
