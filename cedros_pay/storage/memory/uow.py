"""The memory unit of work: writes apply at once and are undone in reverse on failure.

Memory has no transactions, so this gives all-or-nothing without isolation: another
coroutine may see a write before its block ends. That is enough for tests and the memory
backend, which is one process by definition. Each undo reverses exactly what its write
changed (a row removed, a count moved back), so unrelated concurrent writes survive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime

from cedros_pay.core.models import PaymentTransaction, PendingWebhook, StripeSession
from cedros_pay.storage.memory.carts import MemoryCartQuotes
from cedros_pay.storage.memory.catalog import MemoryCoupons
from cedros_pay.storage.memory.payments import MemoryPayments
from cedros_pay.storage.memory.refunds import MemoryRefundQuotes
from cedros_pay.storage.memory.sessions import MemoryStripeSessions
from cedros_pay.storage.memory.webhooks import MemoryWebhookQueue
from cedros_pay.storage.repos import UnitOfWork

Undo = Callable[[], Awaitable[object]]


class _Journal:
    """The undo steps of one unit of work, newest last."""

    def __init__(self) -> None:
        self.steps: list[Undo] = []

    def kept(self, ok: bool, undo: Undo) -> bool:
        """Remember `undo` if the write it reverses took effect; pass its result on."""
        if ok:
            self.steps.append(undo)
        return ok


class _Payments:
    def __init__(self, inner: MemoryPayments, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def record(self, tx: PaymentTransaction) -> bool:
        return await self.record_many([tx])

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        signatures = [tx.signature for tx in txs]
        return self._journal.kept(await self._inner.record_many(txs),
                                  lambda: self._inner.forget(signatures))


class _Carts:
    def __init__(self, inner: MemoryCartQuotes, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        before = self._inner.paid_state(cart_id)
        return self._journal.kept(await self._inner.mark_paid(tenant, cart_id, wallet),
                                  lambda: self._inner.restore(before))

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        before = self._inner.paid_state(cart_id)
        return self._journal.kept(await self._inner.release_claim(tenant, cart_id, holder),
                                  lambda: self._inner.restore(before))


class _Coupons:
    def __init__(self, inner: MemoryCoupons, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def increment_usage(self, tenant: str, code: str) -> bool:
        return self._journal.kept(await self._inner.increment_usage(tenant, code),
                                  lambda: self._inner.adjust_usage(tenant, code, -1))

    async def release_usage(self, tenant: str, code: str) -> bool:
        return self._journal.kept(await self._inner.release_usage(tenant, code),
                                  lambda: self._inner.adjust_usage(tenant, code, 1))


class _Refunds:
    def __init__(self, inner: MemoryRefundQuotes, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool:
        done = await self._inner.mark_processed(tenant, refund_id, processed_by, signature, at)
        return self._journal.kept(done, lambda: self._inner.unprocess(refund_id))


class _Webhooks:
    def __init__(self, inner: MemoryWebhookQueue, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def enqueue(self, webhook: PendingWebhook) -> None:
        await self._inner.enqueue(webhook)  # raises, journaling nothing, on a taken id
        tenant, webhook_id = webhook.tenant_id, webhook.id
        self._journal.kept(True, lambda: self._inner.delete(tenant, webhook_id))


class _Sessions:
    def __init__(self, inner: MemoryStripeSessions, journal: _Journal) -> None:
        self._inner, self._journal = inner, journal

    async def save(self, session: StripeSession) -> None:
        session_id, before = session.id, self._inner.row(session.id)
        await self._inner.save(session)
        self._journal.kept(True, lambda: self._inner.restore(session_id, before))

    async def mark_completed(self, tenant: str, session_id: str, at: datetime) -> bool:
        before = self._inner.row(session_id)
        return self._journal.kept(await self._inner.mark_completed(tenant, session_id, at),
                                  lambda: self._inner.restore(session_id, before))


def memory_unit_of_work(
    payments: MemoryPayments, carts: MemoryCartQuotes, coupons: MemoryCoupons,
    refunds: MemoryRefundQuotes, webhooks: MemoryWebhookQueue,
    sessions: MemoryStripeSessions,
) -> Callable[[], AbstractAsyncContextManager[UnitOfWork]]:
    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        journal = _Journal()
        try:
            yield UnitOfWork(
                payments=_Payments(payments, journal), carts=_Carts(carts, journal),
                coupons=_Coupons(coupons, journal), refunds=_Refunds(refunds, journal),
                webhooks=_Webhooks(webhooks, journal), sessions=_Sessions(sessions, journal))
        except BaseException:
            # Memory repositories never suspend, so a cancellation cannot cut this short.
            for step in reversed(journal.steps):
                await step()
            raise

    return unit_of_work
