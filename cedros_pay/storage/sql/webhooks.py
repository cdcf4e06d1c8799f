"""The persistent webhook queue in SQL (spec 20)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.storage.sql.base import SqlRepo, meta_out
from cedros_pay.storage.sql.inline_sqlite import InlineConnection


class SqlWebhookQueue(SqlRepo):
    @staticmethod
    def _model(r: Any) -> PendingWebhook:
        return PendingWebhook(
            id=r.id, tenant_id=r.tenant_id, url=r.url, payload=r.payload,
            headers=meta_out(r.headers), event_type=r.event_type, event_id=r.event_id or "",
            status=WebhookStatus(r.status), attempts=r.attempts, max_attempts=r.max_attempts,
            last_error=r.last_error or "", last_attempt_at=r.last_attempt_at,
            next_attempt_at=r.next_attempt_at, created_at=r.created_at,
            completed_at=r.completed_at,
        )

    async def enqueue(self, webhook: PendingWebhook, *, within: object | None = None) -> None:
        w = webhook
        # Values as execute() parameters, not `.values(...)`: SQLAlchemy would coerce each
        # of the fifteen into a bound parameter of a new statement on every call.
        row = {
            "id": w.id, "tenant_id": w.tenant_id, "url": w.url, "payload": w.payload,
            "headers": w.headers, "event_type": w.event_type, "event_id": w.event_id or None,
            "status": w.status.value, "attempts": w.attempts, "max_attempts": w.max_attempts,
            "last_error": w.last_error, "last_attempt_at": w.last_attempt_at,
            "next_attempt_at": w.next_attempt_at, "created_at": w.created_at,
            "completed_at": w.completed_at,
        }
        stmt = insert(self._t.webhook_queue)
        if within is not None:
            if not isinstance(within, AsyncConnection | InlineConnection):
                raise TypeError("within must be the connection of an open transaction")
            await within.execute(stmt, row)  # committed (or rolled back) by its owner
            return
        async with self._engine.begin() as conn:
            await conn.execute(stmt, row)

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=5)
    ) -> list[PendingWebhook]:
        t = self._t.webhook_queue
        due = or_(
            and_(t.c.status == WebhookStatus.PENDING.value,
                 or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= now)),
            and_(t.c.status == WebhookStatus.PROCESSING.value,
                 t.c.last_attempt_at < now - lease),
        )
        # SKIP LOCKED makes concurrent claimers on PostgreSQL take disjoint rows; SQLite
        # runs the single UPDATE under its database write lock, which serialises them.
        ids = (select(t.c.id).where(due).order_by(t.c.created_at).limit(limit)
               .with_for_update(skip_locked=True).scalar_subquery())
        stmt = (
            update(t).where(t.c.id.in_(ids))
            .values(status=WebhookStatus.PROCESSING.value, attempts=t.c.attempts + 1,
                    last_attempt_at=now)
            .returning(*t.c)
        )
        async with self._engine.begin() as conn:
            rows = [self._model(r) for r in await conn.execute(stmt)]
        return sorted(rows, key=lambda w: (w.created_at, w.id))

    async def _set(self, webhook_id: str, **values: Any) -> bool:
        t = self._t.webhook_queue
        async with self._engine.begin() as conn:
            result = await conn.execute(update(t).where(t.c.id == webhook_id).values(**values))
            return result.rowcount == 1

    async def release(self, webhook_id: str, next_attempt_at: datetime) -> bool:
        t = self._t.webhook_queue
        stmt = (update(t).where(t.c.id == webhook_id,
                                t.c.status == WebhookStatus.PROCESSING.value)
                .values(status=WebhookStatus.PENDING.value, next_attempt_at=next_attempt_at,
                        attempts=func.max(t.c.attempts - 1, 0) if not self._is_postgres
                        else func.greatest(t.c.attempts - 1, 0)))
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def mark_success(self, webhook_id: str, at: datetime) -> None:
        await self._set(webhook_id, status=WebhookStatus.SUCCESS.value, completed_at=at,
                        last_error="")

    async def mark_success_many(self, webhook_ids: Sequence[str], at: datetime) -> None:
        if not webhook_ids:
            return
        t = self._t.webhook_queue
        stmt = (update(t).where(t.c.id.in_(list(webhook_ids)))
                .values(status=WebhookStatus.SUCCESS.value, completed_at=at, last_error=""))
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def mark_failed(
        self, webhook_id: str, error: str, at: datetime, next_attempt_at: datetime | None
    ) -> None:
        if next_attempt_at is None:
            await self._set(webhook_id, status=WebhookStatus.FAILED.value, last_error=error,
                            completed_at=at, next_attempt_at=None)
        else:
            await self._set(webhook_id, status=WebhookStatus.PENDING.value, last_error=error,
                            next_attempt_at=next_attempt_at)

    async def get(self, tenant: str, webhook_id: str) -> PendingWebhook | None:
        t = self._t.webhook_queue
        q = select(t).where(t.c.tenant_id == tenant, t.c.id == webhook_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return self._model(row) if row else None

    async def list(
        self, tenant: str, status: WebhookStatus | None = None, limit: int = 100
    ) -> list[PendingWebhook]:
        t = self._t.webhook_queue
        q = select(t).where(t.c.tenant_id == tenant)
        if status is not None:
            q = q.where(t.c.status == status.value)
        q = q.order_by(t.c.created_at.desc(), t.c.id).limit(limit)
        async with self._engine.connect() as conn:
            return [self._model(r) for r in await conn.execute(q)]

    async def counts(self) -> dict[WebhookStatus, int]:
        t = self._t.webhook_queue
        out = dict.fromkeys(WebhookStatus, 0)
        async with self._engine.connect() as conn:
            for status, n in await conn.execute(select(t.c.status, func.count())
                                                .group_by(t.c.status)):
                out[WebhookStatus(status)] = int(n)
        return out

    async def retry(self, tenant: str, webhook_id: str, now: datetime) -> bool:
        t = self._t.webhook_queue
        stmt = (
            update(t)
            .where(t.c.tenant_id == tenant, t.c.id == webhook_id,
                   t.c.status != WebhookStatus.PROCESSING.value)
            .values(status=WebhookStatus.PENDING.value, attempts=0, next_attempt_at=now,
                    completed_at=None, last_error="")
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def delete(self, tenant: str, webhook_id: str) -> bool:
        t = self._t.webhook_queue
        async with self._engine.begin() as conn:
            stmt = delete(t).where(t.c.tenant_id == tenant, t.c.id == webhook_id)
            return (await conn.execute(stmt)).rowcount == 1

    async def delete_completed_before(self, before: datetime) -> int:
        t = self._t.webhook_queue
        stmt = delete(t).where(t.c.status == WebhookStatus.SUCCESS.value,
                               t.c.completed_at < before)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount
