"""Composition of merchant webhooks (issue 12): the outbox the payments stage their events
in, the queueing notifier behind it, the delivery worker and the admin resolver, from
`callbacks` and `circuit_breaker.webhook`.

Composition code (it knows the concrete classes): `bootstrap.app` calls `build_webhooks`
once when the app opens its resources and starts `worker` with the other workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.integrations.circuit_breaker import BreakerSettings
from cedros_pay.integrations.webhooks import DeadLetterFile, DestinationBreakers, WebhookSender
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.observability.hooks import CircuitBreakerHook, WebhookHook
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.webhook_admin import WebhookAdmin
from cedros_pay.resolvers.webhooks import QueueingNotifier, WebhookOutbox, WebhookTargets
from cedros_pay.storage.store import Store
from cedros_pay.workers import SupervisedWorker
from cedros_pay.workers.webhook_delivery import RetryPolicy, WebhookDelivery

# A claim outlives the attempt it belongs to: the HTTP timeout twice, plus the time to
# record the outcome. After that the item counts as abandoned and is claimed again.
LEASE_MARGIN = timedelta(seconds=1)
# Other processes' items and abandoned claims are found at least this often (issue 12).
MAX_POLL_INTERVAL = 5.0


class WebhookHooks(WebhookHook, CircuitBreakerHook, Protocol):
    """What the webhook parts report to (the app's HookRegistry satisfies it)."""


@dataclass(slots=True)
class Webhooks:
    """`outbox` is what payments get (their events queued in their unit of work);
    `notifier` queues events that have no unit of work of their own."""

    outbox: WebhookOutbox
    notifier: QueueingNotifier
    delivery: WebhookDelivery
    breakers: DestinationBreakers
    worker: SupervisedWorker

    def admin(self, store: Store, auth: AdminAuth, clock: Clock) -> WebhookAdmin:
        return WebhookAdmin(store.webhooks, auth, clock, wake=self.delivery.wake)

    def start(self, lifecycle: Lifecycle) -> None:
        self.worker.start()
        lifecycle.push("worker:webhook_delivery", self.worker.stop)


def retry_policy(config: Config) -> RetryPolicy:
    r = config.callbacks.retry
    return RetryPolicy(max_attempts=r.max_attempts if r.enabled else 1,
                       initial=r.initial_interval.total_seconds(),
                       maximum=r.max_interval.total_seconds(), multiplier=r.multiplier)


def build_webhooks(config: Config, store: Store, clock: Clock, *, http: httpx.AsyncClient,
                   hooks: WebhookHooks) -> Webhooks:
    cb = config.callbacks
    b = config.circuit_breaker
    w = b.webhook
    breakers = DestinationBreakers(
        BreakerSettings(max_requests=w.max_requests, interval=w.interval.total_seconds(),
                        timeout=w.timeout.total_seconds(),
                        consecutive_failures=w.consecutive_failures,
                        failure_ratio=w.failure_ratio, min_requests=w.min_requests),
        enabled=b.enabled, hooks=hooks)
    timeout = cb.timeout.total_seconds()
    sender = WebhookSender(http, clock=clock, timeout=timeout, breakers=breakers,
                           headers=dict(cb.headers), secret=cb.hmac_secret)
    retry = retry_policy(config)
    delivery = WebhookDelivery(
        store.webhooks, sender, clock=clock, retry=retry,
        poll_interval=min(cb.poll_interval.total_seconds(), MAX_POLL_INTERVAL),
        lease=cb.timeout * 2 + LEASE_MARGIN,
        dead_letters=DeadLetterFile(cb.dlq_path) if cb.dlq_enabled else None, hooks=hooks)
    notifier = QueueingNotifier(
        store.webhooks, WebhookTargets(cb.payment_success_url, cb.refund_success_url,
                                       cb.subscription_url),
        clock=clock, max_attempts=retry.max_attempts, wake=delivery.wake, hooks=hooks)
    # In-flight deliveries finish on shutdown (they are bounded by the timeout).
    worker = SupervisedWorker("webhook_delivery", delivery.run, grace=timeout + 2.0)
    return Webhooks(outbox=WebhookOutbox(notifier), notifier=notifier, delivery=delivery,
                    breakers=breakers, worker=worker)
