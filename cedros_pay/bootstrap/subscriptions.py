"""Composition of subscriptions: their store, the Stripe client and the event notifier."""

from __future__ import annotations

from collections.abc import Sequence

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.events import Notifier
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.subscription_events import SubscriptionFanOut
from cedros_pay.resolvers.subscriptions import SubscriptionGateway, Subscriptions
from cedros_pay.storage.memory.subscriptions import MemorySubscriptions
from cedros_pay.storage.open import open_store
from cedros_pay.storage.repos import ProductRepo, SubscriptionRepo
from cedros_pay.storage.sql.schema import TableNames
from cedros_pay.storage.store import Store


def subscription_repo(config: Config, store: Store) -> SubscriptionRepo:
    """`subscriptions.backend` defaults to `storage.backend` (the store's own table);
    `memory` keeps them in this process even beside a database."""
    if config.subscriptions.backend == "memory" and config.storage.backend != "memory":
        return MemorySubscriptions()
    return store.subscriptions


def _own_postgres(config: Config) -> bool:
    subs, storage = config.subscriptions, config.storage
    return subs.enabled and subs.backend == "postgres" and (
        storage.backend != "postgres" or subs.postgres_url != storage.postgres_url)


async def open_subscription_repo(config: Config, store: Store, lifecycle: Lifecycle,
                                 names: TableNames) -> SubscriptionRepo:
    """As `subscription_repo`, and a PostgreSQL of their own when `subscriptions.backend`
    is `postgres` apart from the main store (config validation has checked its URL)."""
    if not _own_postgres(config):
        return subscription_repo(config, store)
    own = await open_store("postgres", postgres_url=config.subscriptions.postgres_url,
                           names=names)
    lifecycle.push("subscription_store", own.close)
    return own.subscriptions


def build_subscriptions(config: Config, store: Store, clock: Clock, *, quotes: Quotes,
                        products: ProductRepo, notifiers: Sequence[Notifier],
                        gateway: SubscriptionGateway | None,
                        repo: SubscriptionRepo | None = None,
                        admin_auth: AdminAuth | None = None) -> Subscriptions | None:
    """None unless `subscriptions.enabled` (the routes then answer 404)."""
    subs = config.subscriptions
    if not subs.enabled:
        return None
    events = SubscriptionFanOut(notifiers)
    return Subscriptions(
        repo=repo or subscription_repo(config, store), products=products, quotes=quotes,
        payments=store.payments, notifier=events, clock=clock,
        grace_period_hours=subs.grace_period_hours, gateway=gateway,
        success_url=config.stripe.success_url, cancel_url=config.stripe.cancel_url,
        admin_auth=admin_auth)
