"""Admin nonces in SQL: single use, purpose-bound, expiring (spec 13)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update

from cedros_pay.core.models import AdminNonce, NonceOutcome
from cedros_pay.storage.sql.base import SqlRepo


class SqlNonces(SqlRepo):
    async def create(self, nonce: AdminNonce) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(self._t.admin_nonces).values(
                id=nonce.id, tenant_id=nonce.tenant_id, purpose=nonce.purpose,
                created_at=nonce.created_at, expires_at=nonce.expires_at,
                consumed_at=nonce.consumed_at,
            ))

    async def consume(
        self, tenant: str, nonce_id: str, purpose: str, now: datetime
    ) -> NonceOutcome:
        t = self._t.admin_nonces
        # One conditional UPDATE decides; the SELECT afterwards only explains a refusal.
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == nonce_id,
                   (t.c.purpose == purpose) | (t.c.purpose == ""),
                   t.c.consumed_at.is_(None), t.c.expires_at > now)
            .values(consumed_at=now)
        )
        async with self._engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount == 1:
                return NonceOutcome.CONSUMED
            row = (await conn.execute(
                select(t).where(t.c.tenant_id == tenant, t.c.id == nonce_id))).first()
        if row is None:
            return NonceOutcome.NOT_FOUND
        if row.consumed_at is not None:
            return NonceOutcome.ALREADY_USED
        if row.purpose not in (purpose, ""):
            return NonceOutcome.WRONG_PURPOSE
        return NonceOutcome.EXPIRED

    async def delete_expired(self, now: datetime) -> int:
        t = self._t.admin_nonces
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(t).where(t.c.expires_at <= now))).rowcount
