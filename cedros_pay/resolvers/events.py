"""Payment events: what the merchant's backend is told (spec 06, spec 20) and what live
dashboards watch (GraphQL `paymentEvents`).

Two channels, so that no event is queued twice: the `EventOutbox` writes the merchant's
webhook inside the unit of work of the change (durable, exactly when the change commits);
the `Notifier` is told after the commit (live GraphQL events, an embedder's callback) and
never queues what the outbox staged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cedros_pay.storage.repos import UnitOfWork

log = logging.getLogger("cedros_pay.events")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentEvent:
    event_id: str
    event_timestamp: datetime
    resource_id: str
    method: str  # "x402" | "stripe"
    paid_at: datetime
    tenant_id: str = "default"
    event_type: str = "payment.succeeded"
    crypto_atomic_amount: int = 0
    crypto_token: str = ""
    wallet: str = ""
    proof_signature: str = ""
    fiat_amount_cents: int = 0
    fiat_currency: str = ""
    stripe_session_id: str = ""
    stripe_customer: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


AfterCommit = Callable[[], None]


def nothing_after_commit() -> None:
    return None


class EventOutbox(Protocol):
    """Where a change's merchant event joins the change's unit of work: staged in the same
    transaction as the payment row, so it is queued if and only if the payment is
    recorded (issue 12). The webhook queue implements it (`resolvers.webhooks`)."""

    async def stage(self, uow: UnitOfWork, event: PaymentEvent) -> AfterCommit:
        """Write `event` through `uow`; returns what to run once the unit has committed
        (report it queued, wake the delivery worker), never before, never on rollback."""


class Notifier(Protocol):
    """Where settled payments are reported after their unit of work committed (spec 20:
    the durable webhook goes through the `EventOutbox` instead)."""

    async def payment_succeeded(self, event: PaymentEvent) -> None: ...


class NoopNotifier:
    async def payment_succeeded(self, event: PaymentEvent) -> None:
        return None


class PaymentEventHub:
    """Fan-out of settled payments to in-process subscribers.

    Each subscriber has a bounded queue; a subscriber too slow to keep up loses its oldest
    events rather than slowing payments down.
    """

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[asyncio.Queue[PaymentEvent]] = set()
        self._queue_size = queue_size

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, event: PaymentEvent) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self, tenant: str | None = None) -> AsyncIterator[PaymentEvent]:
        queue: asyncio.Queue[PaymentEvent] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if tenant is None or event.tenant_id == tenant:
                    yield event
        finally:
            self._subscribers.discard(queue)


class PublishingNotifier:
    """Tells the hub first (cheap, in-process), then the configured notifier."""

    def __init__(self, inner: Notifier, hub: PaymentEventHub) -> None:
        self._inner = inner
        self._hub = hub

    async def payment_succeeded(self, event: PaymentEvent) -> None:
        self._hub.publish(event)
        try:
            await self._inner.payment_succeeded(event)
        except Exception:  # the payment is settled; a notifier failure must not undo it
            log.exception("payment notifier failed", extra={"event_id": event.event_id})
