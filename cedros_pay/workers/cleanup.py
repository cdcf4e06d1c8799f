"""Expired-data cleanup and payment archival (spec 11).

Cleanup deletes, every `storage.cleanup_interval`: cart quotes past expiry, pending refund
quotes past expiry, admin nonces past expiry, and idempotency rows past expiry. Each
deletion is tried on its own, so one failing table does not keep the others from being
cleaned; only when all fail does the job raise (and the supervisor back off).

Archival, when enabled, moves payments older than the retention period out of the hot
table every `storage.archival.run_interval`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cedros_pay.core.clock import Clock
from cedros_pay.storage.store import Store

log = logging.getLogger("cedros_pay.workers.cleanup")

Task = tuple[str, Callable[[datetime], Awaitable[int]]]


class CleanupFailed(Exception):
    pass


class Cleanup:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.clock = clock
        self.tasks: list[Task] = [
            ("cart_quotes", store.carts.delete_expired),
            ("refund_quotes", store.refunds.delete_expired_pending),
            ("admin_nonces", store.nonces.delete_expired),
            ("idempotency_keys", store.idempotency.delete_expired),
        ]

    async def __call__(self) -> dict[str, int]:
        now = self.clock.now()
        removed: dict[str, int] = {}
        failed: list[str] = []
        for name, delete in self.tasks:
            try:
                removed[name] = await delete(now)
            except Exception:
                log.exception("cleanup failed", extra={"what": name})
                failed.append(name)
        if failed and len(failed) == len(self.tasks):
            raise CleanupFailed("every cleanup task failed: " + ", ".join(failed))
        level = logging.INFO if any(removed.values()) else logging.DEBUG
        log.log(level, "expired data removed", extra={"removed": removed})
        return removed


class Archival:
    def __init__(self, store: Store, clock: Clock, retention: timedelta) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention

    async def __call__(self) -> int:
        before = self.clock.now() - self.retention
        moved = await self.store.payments.archive_older_than(before)
        log.info("payments archived", extra={"archived": moved, "before": before.isoformat()})
        return moved
