"""The Store: every repository of one backend, and how to open one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    WebhookQueue,
)


async def _nothing() -> None:
    return None


async def _always() -> bool:
    return True


@dataclass(slots=True, kw_only=True)
class Store:
    """Repositories sharing one connection pool; `close()` releases it."""

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
        webhooks,
    )

    return Store(
        backend="memory",
        carts=carts.MemoryCartQuotes(),
        refunds=refunds.MemoryRefundQuotes(),
        payments=payments.MemoryPayments(),
        nonces=nonces.MemoryNonces(),
        webhooks=webhooks.MemoryWebhookQueue(),
        idempotency=idempotency.MemoryIdempotency(),
        sessions=sessions.MemoryStripeSessions(),
        products=catalog.MemoryProducts(),
        coupons=catalog.MemoryCoupons(),
        subscriptions=subscriptions.MemorySubscriptions(),
    )
