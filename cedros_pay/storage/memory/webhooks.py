"""The webhook queue in memory."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta

from cedros_pay.core.models import PendingWebhook, WebhookStatus


class MemoryWebhookQueue:
    def __init__(self) -> None:
        self._rows: dict[str, PendingWebhook] = {}

    async def enqueue(self, webhook: PendingWebhook, *, within: object | None = None) -> None:
        # One dict write: atomic with whatever the caller's unit of work does around it.
        if webhook.id in self._rows:
            raise ValueError(f"webhook {webhook.id!r} exists")
        self._rows[webhook.id] = copy.deepcopy(webhook)

    def _due(self, w: PendingWebhook, now: datetime, lease: timedelta) -> bool:
        if w.status is WebhookStatus.PENDING:
            return w.next_attempt_at is None or w.next_attempt_at <= now
        return (w.status is WebhookStatus.PROCESSING and w.last_attempt_at is not None
                and w.last_attempt_at < now - lease)

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=5)
    ) -> list[PendingWebhook]:
        due = sorted((w for w in self._rows.values() if self._due(w, now, lease)),
                     key=lambda w: (w.created_at, w.id))[:limit]
        for w in due:
            w.status, w.attempts, w.last_attempt_at = WebhookStatus.PROCESSING, w.attempts + 1, now
        return copy.deepcopy(due)

    async def release(self, webhook_id: str, next_attempt_at: datetime) -> bool:
        w = self._rows.get(webhook_id)
        if w is None or w.status is not WebhookStatus.PROCESSING:
            return False
        w.status, w.attempts = WebhookStatus.PENDING, max(0, w.attempts - 1)
        w.next_attempt_at = next_attempt_at
        return True

    async def mark_success(self, webhook_id: str, at: datetime) -> None:
        if (w := self._rows.get(webhook_id)) is not None:
            w.status, w.completed_at, w.last_error = WebhookStatus.SUCCESS, at, ""

    async def mark_success_many(self, webhook_ids: Sequence[str], at: datetime) -> None:
        for webhook_id in webhook_ids:
            await self.mark_success(webhook_id, at)

    async def mark_failed(
        self, webhook_id: str, error: str, at: datetime, next_attempt_at: datetime | None
    ) -> None:
        if (w := self._rows.get(webhook_id)) is None:
            return
        w.last_error, w.next_attempt_at = error, next_attempt_at
        if next_attempt_at is None:
            w.status, w.completed_at = WebhookStatus.FAILED, at
        else:
            w.status = WebhookStatus.PENDING

    async def get(self, tenant: str, webhook_id: str) -> PendingWebhook | None:
        w = self._rows.get(webhook_id)
        return copy.deepcopy(w) if w is not None and w.tenant_id == tenant else None

    async def list(
        self, tenant: str, status: WebhookStatus | None = None, limit: int = 100
    ) -> list[PendingWebhook]:
        rows = [w for w in self._rows.values()
                if w.tenant_id == tenant and (status is None or w.status is status)]
        rows.sort(key=lambda w: w.id)
        rows.sort(key=lambda w: w.created_at, reverse=True)
        return copy.deepcopy(rows[:limit])

    async def counts(self) -> dict[WebhookStatus, int]:
        out = dict.fromkeys(WebhookStatus, 0)
        for w in self._rows.values():
            out[w.status] += 1
        return out

    async def retry(self, tenant: str, webhook_id: str, now: datetime) -> bool:
        w = self._rows.get(webhook_id)
        if w is None or w.tenant_id != tenant or w.status is WebhookStatus.PROCESSING:
            return False
        w.status, w.attempts, w.next_attempt_at = WebhookStatus.PENDING, 0, now
        w.completed_at, w.last_error = None, ""
        return True

    async def delete(self, tenant: str, webhook_id: str) -> bool:
        w = self._rows.get(webhook_id)
        if w is None or w.tenant_id != tenant:
            return False
        del self._rows[webhook_id]
        return True

    async def delete_completed_before(self, before: datetime) -> int:
        gone = [k for k, w in self._rows.items() if w.status is WebhookStatus.SUCCESS
                and w.completed_at is not None and w.completed_at < before]
        for k in gone:
            del self._rows[k]
        return len(gone)
