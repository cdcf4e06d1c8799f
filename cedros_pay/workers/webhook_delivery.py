"""The webhook delivery worker (spec 11, spec 20, issue 12).

It claims due items from the store's queue, POSTs them, and records the outcome: success;
a retry at `next_attempt_at` (waits live in the queue, never in a sleeping task, so a
retry days away survives restarts); or, after the last attempt, `failed` plus a line in
the dead-letter file, never retried automatically. An open breaker hands the item back
without spending an attempt. The worker wakes when this process enqueues, when a retry
it scheduled falls due, and every `poll_interval` (for items other processes queued and
for claims whose worker died: a claim's lease runs out and the item is claimed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cedros_pay.core.clock import Clock
from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.integrations.webhooks import (
    DeadLetterFile,
    Deferred,
    Delivered,
    Failed,
    WebhookSender,
    loggable_url,
)
from cedros_pay.observability.hooks import (
    QueueSizeEvent,
    WebhookDeliveredEvent,
    WebhookFailedEvent,
    WebhookHook,
    WebhookRetriedEvent,
)
from cedros_pay.storage.repos import WebhookQueue

log = logging.getLogger("cedros_pay.webhooks")

# The shortest pause before an item whose breaker is open (or half-open and busy) is
# offered again, so a busy half-open breaker does not make the worker spin.
MIN_DEFER = 0.05


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`callbacks.retry`: `max_attempts` counts every attempt (DESIGN §7)."""

    max_attempts: int = 5
    initial: float = 1.0
    maximum: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def base_wait(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` (1-based): initial x multiplier^(n-1),
        capped at `maximum`."""
        return float(min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1)))

    def wait(self, attempt: int, rng: random.Random) -> float:
        """The base wait plus up to `jitter` of it; never less than the base wait."""
        base = self.base_wait(attempt)
        return base + rng.uniform(0.0, self.jitter * base)


class WebhookDelivery:
    def __init__(self, queue: WebhookQueue, sender: WebhookSender, *, clock: Clock,
                 retry: RetryPolicy, poll_interval: float, lease: timedelta,
                 batch: int = 10, dead_letters: DeadLetterFile | None = None,
                 hooks: WebhookHook | None = None, rng: random.Random | None = None) -> None:
        self._queue = queue
        self._sender = sender
        self._clock = clock
        self.retry = retry
        self.poll_interval = poll_interval
        self.lease = lease
        self.batch = batch
        self._dead_letters = dead_letters
        self._hooks = hooks
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._next_due: datetime | None = None  # the earliest retry this worker scheduled
        self._gauges_at: datetime | None = None

    def wake(self) -> None:
        """An item was queued: deliver now instead of at the next poll."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """The supervised body: deliver until `stopping` is set, then return. In-flight
        deliveries finish first; items not yet claimed stay queued."""
        while not stopping.is_set():
            self._wake.clear()
            claimed = await self.deliver_due()
            await self._report_depth()
            if claimed >= self.batch:
                continue  # more may be due right now
            await self._sleep(stopping)

    async def _sleep(self, stopping: asyncio.Event) -> None:
        timeout = self.poll_interval
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, (self._next_due - self._clock.now())
                                       .total_seconds()))
        waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            for w in waits:
                with contextlib.suppress(asyncio.CancelledError):
                    await w

    async def deliver_due(self) -> int:
        """Claim one batch of due items and deliver them concurrently; how many claimed."""
        now = self._clock.now()
        if self._next_due is not None and self._next_due <= now:
            self._next_due = None
        items = await self._queue.claim_due(now, self.batch, self.lease)
        if items:
            outcomes = await asyncio.gather(*(self._sender.send(item) for item in items))
            delivered = [(i, o) for i, o in zip(items, outcomes, strict=True)
                         if isinstance(o, Delivered)]
            # Successes in one write (the common case); the rest one by one.
            await self._queue.mark_success_many([i.id for i, _ in delivered],
                                                self._clock.now())
            if self._hooks is not None:
                for item, done in delivered:
                    self._hooks.on_webhook_delivered(WebhookDeliveredEvent(
                        item.id, loggable_url(item.url), item.event_type, done.duration))
            for item, outcome in zip(items, outcomes, strict=True):
                if not isinstance(outcome, Delivered):
                    await self._settle(item, outcome)
        return len(items)

    def _schedule(self, at: datetime) -> None:
        if self._next_due is None or at < self._next_due:
            self._next_due = at

    async def _settle(self, item: PendingWebhook, outcome: Deferred | Failed) -> None:
        """An attempt that did not succeed: give it back (breaker open), retry or fail."""
        now = self._clock.now()
        url = loggable_url(item.url)
        if isinstance(outcome, Deferred):
            at = now + timedelta(seconds=max(outcome.retry_after, MIN_DEFER))
            await self._queue.release(item.id, at)
            self._schedule(at)
            log.info("webhook delayed: circuit open", extra={
                "webhook_id": item.id, "url": url, "until": at.isoformat()})
            return
        final = item.attempts >= item.max_attempts
        if final:
            item.status, item.last_error, item.completed_at = (
                WebhookStatus.FAILED, outcome.error, now)
            if self._dead_letters is not None:
                try:  # before the row is marked: a crash in between repeats, never loses
                    await self._dead_letters.save(item)
                except OSError:
                    log.exception("dead-letter file not written", extra={
                        "webhook_id": item.id, "path": str(self._dead_letters.path)})
            await self._queue.mark_failed(item.id, outcome.error, now, None)
        else:
            at = now + timedelta(seconds=self.retry.wait(item.attempts, self._rng))
            await self._queue.mark_failed(item.id, outcome.error, now, at)
            self._schedule(at)
        if self._hooks is not None:
            self._hooks.on_webhook_failed(WebhookFailedEvent(
                item.id, url, item.event_type, outcome.error, item.attempts,
                duration=outcome.duration, final=final))
            if not final:
                self._hooks.on_webhook_retried(WebhookRetriedEvent(
                    item.id, url, item.event_type, item.attempts + 1, at))

    async def _report_depth(self) -> None:
        """Queue depth per status for the gauges, at most once per poll interval."""
        if self._hooks is None:
            return
        now = self._clock.now()
        if self._gauges_at is not None and (now - self._gauges_at).total_seconds() < (
                self.poll_interval):
            return
        self._gauges_at = now
        counts = await self._queue.counts()
        self._hooks.on_webhook_queue_size(QueueSizeEvent(
            by_status={s.value: n for s, n in counts.items()},
            dlq=counts[WebhookStatus.FAILED]))
