"""The memory unit of work: writes apply at once and are undone in reverse on failure.

Memory has no transactions, so this gives all-or-nothing without isolation: another
coroutine may see a write before its block ends. That is enough for tests and the memory
backend, which is one process by definition. Each undo reverses exactly what its write
changed (a row removed, a count moved back), so unrelated concurrent writes survive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from cedros_pay.core.models import PaymentTransaction, PendingWebhook
from cedros_pay.storage.memory.carts import MemoryCartQuotes
from cedros_pay.storage.memory.catalog import MemoryCoupons
from cedros_pay.storage.memory.payments import MemoryPayments
from cedros_pay.storage.memory.refunds import MemoryRefundQuotes
from cedros_pay.storage.memory.webhooks import MemoryWebhookQueue
from cedros_pay.storage.repos import UnitOfWork

Undo = list[Callable[[], Awaitable[object]]]


class _Payments:
    def __init__(self, inner: MemoryPayments, undo: Undo) -> None:
        self._inner, self._undo = inner, undo

    async def record(self, tx: PaymentTransaction) -> bool:
        return await self.record_many([tx])

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        ok = await self._inner.record_many(txs)
        if ok:
            signatures = [tx.signature for tx in txs]
            self._undo.append(lambda: self._inner.forget(signatures))
        return ok


class _Carts:
    def __init__(self, inner: MemoryCartQuotes, undo: Undo) -> None:
        self._inner, self._undo = inner, undo

    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        before = self._inner.paid_state(cart_id)
        ok = await self._inner.mark_paid(tenant, cart_id, wallet)
        if ok:
            self._undo.append(lambda: self._inner.restore(before))
        return ok

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        before = self._inner.paid_state(cart_id)
        ok = await self._inner.release_claim(tenant, cart_id, holder)
        if ok:
            self._undo.append(lambda: self._inner.restore(before))
        return ok


class _Coupons:
    def __init__(self, inner: MemoryCoupons, undo: Undo) -> None:
        self._inner, self._undo = inner, undo

    async def increment_usage(self, tenant: str, code: str) -> bool:
        ok = await self._inner.increment_usage(tenant, code)
        if ok:
            self._undo.append(lambda: self._inner.adjust_usage(tenant, code, -1))
        return ok

    async def release_usage(self, tenant: str, code: str) -> bool:
        ok = await self._inner.release_usage(tenant, code)
        if ok:
            self._undo.append(lambda: self._inner.adjust_usage(tenant, code, 1))
        return ok


class _Refunds:
    def __init__(self, inner: MemoryRefundQuotes, undo: Undo) -> None:
        self._inner, self._undo = inner, undo

    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool:
        ok = await self._inner.mark_processed(tenant, refund_id, processed_by, signature, at)
        if ok:
            self._undo.append(lambda: self._inner.unprocess(refund_id))
        return ok


class _Webhooks:
    def __init__(self, inner: MemoryWebhookQueue, undo: Undo) -> None:
        self._inner, self._undo = inner, undo

    async def enqueue(self, webhook: PendingWebhook) -> None:
        await self._inner.enqueue(webhook)
        tenant, webhook_id = webhook.tenant_id, webhook.id
        self._undo.append(lambda: self._inner.delete(tenant, webhook_id))


@dataclass(frozen=True, slots=True)
class MemoryUnitOfWork:
    payments: _Payments
    carts: _Carts
    coupons: _Coupons
    refunds: _Refunds
    webhooks: _Webhooks


def memory_unit_of_work(
    payments: MemoryPayments, carts: MemoryCartQuotes, coupons: MemoryCoupons,
    refunds: MemoryRefundQuotes, webhooks: MemoryWebhookQueue,
) -> Callable[[], AbstractAsyncContextManager[UnitOfWork]]:
    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        undo: Undo = []
        try:
            yield MemoryUnitOfWork(
                payments=_Payments(payments, undo), carts=_Carts(carts, undo),
                coupons=_Coupons(coupons, undo), refunds=_Refunds(refunds, undo),
                webhooks=_Webhooks(webhooks, undo))
        except BaseException:
            # Memory repositories never suspend, so a cancellation cannot cut this short.
            for step in reversed(undo):
                await step()
            raise

    return unit_of_work
