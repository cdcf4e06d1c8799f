"""Faults injected into a store's units of work, for the all-or-nothing tests.

`inject(store)` wraps `store.unit_of_work` (do it before the app or resolver takes it):
each unit then hands out writers that, while a fault is armed, make the real write
(so the database has really seen it) and then raise `InjectedFault`, as a connection
lost mid-transaction would. Everything else passes straight through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from cedros_pay.core.models import PaymentTransaction, PendingWebhook
from cedros_pay.storage.repos import PaymentWrites, UnitOfWork, WebhookWrites
from cedros_pay.storage.store import Store


class InjectedFault(RuntimeError):
    pass


@dataclass
class Faults:
    """How many of the next payment inserts / webhook enqueues fail (after writing)."""

    record: int = 0
    enqueue: int = 0
    units: int = 0  # units of work opened, for the curious

    def take(self, name: str) -> bool:
        left = getattr(self, name)
        if left <= 0:
            return False
        setattr(self, name, left - 1)
        return True


class _Payments:
    def __init__(self, inner: PaymentWrites, faults: Faults) -> None:
        self._inner, self._faults = inner, faults

    async def record(self, tx: PaymentTransaction) -> bool:
        written = await self._inner.record(tx)
        if written and self._faults.take("record"):
            raise InjectedFault("connection lost after inserting the payment")
        return written

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        written = await self._inner.record_many(txs)
        if written and self._faults.take("record"):
            raise InjectedFault("connection lost after inserting the payments")
        return written


class _Webhooks:
    def __init__(self, inner: WebhookWrites, faults: Faults) -> None:
        self._inner, self._faults = inner, faults

    async def enqueue(self, webhook: PendingWebhook) -> None:
        await self._inner.enqueue(webhook)
        if self._faults.take("enqueue"):
            raise InjectedFault("connection lost after queueing the webhook")


def inject(store: Store) -> Faults:
    """Arm-able faults in every unit of work `store` opens from now on."""
    faults = Faults()
    real = store.unit_of_work

    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        faults.units += 1
        async with real() as uow:
            yield replace(uow, payments=_Payments(uow.payments, faults),
                          webhooks=_Webhooks(uow.webhooks, faults))

    store.unit_of_work = unit_of_work
    return faults
