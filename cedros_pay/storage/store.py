"""The Store: every repository of one backend, and how to open one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from cedros_pay.storage.repos import (
    CartQuoteRepo,
    CouponRepo,
    IdempotencyRepo,
    NonceRepo,
    PaymentRepo,
    ProductRepo,
    RefundQuoteRepo,
    StripeSessionRepo,
    SubscriptionRepo,
    UnitOfWork,
    WebhookQueue,
)


async def _nothing() -> None:
    return None


async def _always() -> bool:
    return True


@dataclass(slots=True, kw_only=True)
class Store:
    """Repositories sharing one connection pool; `close()` releases it.

    `unit_of_work()` opens a `UnitOfWork` (see its docstring for the payment flow):
    `async with store.unit_of_work() as uow:` and every write through `uow` commits at
    the end of the block, or none does.
    """

    backend: str
    carts: CartQuoteRepo
    refunds: RefundQuoteRepo
    payments: PaymentRepo
    nonces: NonceRepo
    webhooks: WebhookQueue
    idempotency: IdempotencyRepo
    sessions: StripeSessionRepo
    products: ProductRepo
    coupons: CouponRepo
    subscriptions: SubscriptionRepo
    unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]]
    close: Callable[[], Awaitable[None]] = field(default=_nothing)
    ping: Callable[[], Awaitable[bool]] = field(default=_always)


def memory_store() -> Store:
    from cedros_pay.storage.memory import (
        carts,
        catalog,
        idempotency,
        nonces,
        payments,
        refunds,
        sessions,
        subscriptions,
        uow,
        webhooks,
    )

    store_payments = payments.MemoryPayments()
    store_carts = carts.MemoryCartQuotes()
    store_coupons = catalog.MemoryCoupons()
    store_refunds = refunds.MemoryRefundQuotes()
    store_webhooks = webhooks.MemoryWebhookQueue()
    store_sessions = sessions.MemoryStripeSessions()
    return Store(
        backend="memory",
        carts=store_carts,
        refunds=store_refunds,
        payments=store_payments,
        nonces=nonces.MemoryNonces(),
        webhooks=store_webhooks,
        idempotency=idempotency.MemoryIdempotency(),
        sessions=store_sessions,
        products=catalog.MemoryProducts(),
        coupons=store_coupons,
        subscriptions=subscriptions.MemorySubscriptions(),
        unit_of_work=uow.memory_unit_of_work(
            store_payments, store_carts, store_coupons, store_refunds, store_webhooks,
            store_sessions),
    )
