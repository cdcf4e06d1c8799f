"""Composition of subscriptions: their store, the Stripe client and the event notifier."""

from __future__ import annotations

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.resolvers.events import Notifier
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.subscription_events import (
    NoSubscriptionNotifier,
    SubscriptionNotifier,
)
from cedros_pay.resolvers.subscriptions import SubscriptionGateway, Subscriptions
from cedros_pay.storage.memory.subscriptions import MemorySubscriptions
from cedros_pay.storage.repos import ProductRepo, SubscriptionRepo
from cedros_pay.storage.store import Store


def subscription_repo(config: Config, store: Store) -> SubscriptionRepo:
    """`subscriptions.backend` defaults to `storage.backend` (the store's own table);
    `memory` keeps them in this process even beside a database."""
    if config.subscriptions.backend == "memory" and config.storage.backend != "memory":
        return MemorySubscriptions()
    return store.subscriptions


def build_subscriptions(config: Config, store: Store, clock: Clock, *, quotes: Quotes,
                        products: ProductRepo, notifier: Notifier,
                        gateway: SubscriptionGateway | None) -> Subscriptions | None:
    """None unless `subscriptions.enabled` (the routes then answer 404)."""
    subs = config.subscriptions
    if not subs.enabled:
        return None
    events: SubscriptionNotifier = (notifier if isinstance(notifier, SubscriptionNotifier)
                                    else NoSubscriptionNotifier())
    return Subscriptions(
        repo=subscription_repo(config, store), products=products, quotes=quotes,
        payments=store.payments, notifier=events, clock=clock,
        grace_period_hours=subs.grace_period_hours, gateway=gateway,
        success_url=config.stripe.success_url, cancel_url=config.stripe.cancel_url)
