"""Merchant events as queued webhooks (spec 03 payloads, spec 20 queue, issue 12).

`WebhookOutbox` is the `EventOutbox` that makes a settled payment a row in the store's
webhook queue, inside the payment's own unit of work; the delivery worker
(workers/webhook_delivery.py) POSTs it. `QueueingNotifier` builds the rows and enqueues
the events that have no unit of work of their own. The payload is serialised once, here:
the queue keeps those exact bytes, so every attempt sends (and signs) the same body with
the same `eventId`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cedros_pay.core.clock import Clock, to_rfc3339
from cedros_pay.core.ids import new_event_id, new_webhook_id
from cedros_pay.core.models import DEFAULT_TENANT, PendingWebhook
from cedros_pay.integrations.webhooks import loggable_url
from cedros_pay.observability.hooks import WebhookHook, WebhookQueuedEvent
from cedros_pay.resolvers.events import AfterCommit, PaymentEvent, nothing_after_commit
from cedros_pay.resolvers.subscription_events import SubscriptionEvent, subscription_payload
from cedros_pay.storage.repos import UnitOfWork, WebhookQueue

PAYMENT_SUCCEEDED = "payment.succeeded"
REFUND_SUCCEEDED = "refund.succeeded"


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundEvent:
    refund_id: str
    original_purchase_id: str
    recipient_wallet: str
    atomic_amount: int
    token: str
    processed_by: str
    signature: str
    refunded_at: datetime
    event_id: str = field(default_factory=new_event_id)
    event_timestamp: datetime | None = None  # refunded_at when unset
    tenant_id: str = DEFAULT_TENANT
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    method: str = ""  # "x402" | "stripe" (card refunds, issue 14)


@dataclass(frozen=True, slots=True)
class WebhookTargets:
    """Where each kind of event goes: refund and subscription events use the payment
    URL unless they have their own (issue 12). An empty URL means: not sent."""

    payment_url: str
    refund_url: str = ""
    subscription_url: str = ""

    def url_for(self, event_type: str) -> str:
        if event_type.startswith("refund.") and self.refund_url:
            return self.refund_url
        if event_type.startswith("subscription.") and self.subscription_url:
            return self.subscription_url
        return self.payment_url


def payment_payload(e: PaymentEvent) -> dict[str, Any]:
    """Spec 03's payment webhook; the optional fields only when they apply."""
    out: dict[str, Any] = {
        "eventId": e.event_id, "eventType": e.event_type,
        "eventTimestamp": to_rfc3339(e.event_timestamp), "resourceId": e.resource_id,
        "method": e.method,
    }
    optional: dict[str, Any] = {
        "stripeSessionId": e.stripe_session_id, "stripeCustomer": e.stripe_customer,
        "fiatAmountCents": e.fiat_amount_cents, "fiatCurrency": e.fiat_currency,
        "cryptoAtomicAmount": e.crypto_atomic_amount, "cryptoToken": e.crypto_token,
        "wallet": e.wallet, "proofSignature": e.proof_signature,
    }
    out.update({k: v for k, v in optional.items() if v})
    out["metadata"] = dict(e.metadata)
    out["paidAt"] = to_rfc3339(e.paid_at)
    return out


def refund_payload(e: RefundEvent) -> dict[str, Any]:
    """Spec 03's refund webhook."""
    out: dict[str, Any] = {
        "eventId": e.event_id, "eventType": REFUND_SUCCEEDED,
        "eventTimestamp": to_rfc3339(e.event_timestamp or e.refunded_at),
        "refundId": e.refund_id, "originalPurchaseId": e.original_purchase_id,
        "recipientWallet": e.recipient_wallet, "atomicAmount": e.atomic_amount,
        "token": e.token, "processedBy": e.processed_by, "signature": e.signature,
    }
    if e.reason:
        out["reason"] = e.reason
    if e.method:
        out["method"] = e.method
    out["metadata"] = dict(e.metadata)
    out["refundedAt"] = to_rfc3339(e.refunded_at)
    return out


class QueueingNotifier:
    """A `Notifier` that writes each event to the persistent webhook queue.

    `webhook_for_*` build the row without writing it, for a caller that enqueues inside
    its own transaction (`WebhookOutbox`, or `queue.enqueue(item, within=conn)`), then
    calls `committed(item)` after the commit.
    """

    def __init__(self, queue: WebhookQueue, targets: WebhookTargets, *, clock: Clock,
                 max_attempts: int, wake: Callable[[], None] | None = None,
                 hooks: WebhookHook | None = None) -> None:
        self._queue = queue
        self._targets = targets
        self._clock = clock
        self._max_attempts = max_attempts
        self._wake = wake
        self._hooks = hooks

    def _item(self, tenant: str, event_type: str, event_id: str,
              payload: dict[str, Any]) -> PendingWebhook | None:
        url = self._targets.url_for(event_type)
        if not url:
            return None
        now = self._clock.now()
        return PendingWebhook(
            id=new_webhook_id(), tenant_id=tenant, url=url,
            payload=orjson.dumps(payload).decode(), event_type=event_type,
            event_id=event_id, created_at=now, next_attempt_at=now,
            max_attempts=self._max_attempts)

    def webhook_for_payment(self, event: PaymentEvent) -> PendingWebhook | None:
        return self._item(event.tenant_id, event.event_type, event.event_id,
                          payment_payload(event))

    def webhook_for_refund(self, event: RefundEvent) -> PendingWebhook | None:
        return self._item(event.tenant_id, REFUND_SUCCEEDED, event.event_id,
                          refund_payload(event))

    def wake(self) -> None:
        """Tell this process's delivery worker that an item is due now."""
        if self._wake is not None:
            self._wake()

    def committed(self, item: PendingWebhook) -> None:
        """`item` is in the queue for good: report it queued, wake the worker."""
        if self._hooks is not None:
            self._hooks.on_webhook_queued(WebhookQueuedEvent(
                item.id, loggable_url(item.url), item.event_type))
        self.wake()

    async def enqueue(self, item: PendingWebhook | None, *, within: object | None = None
                      ) -> None:
        """Queue `item`; inside the caller's transaction (`within`), the caller calls
        `committed(item)` once that transaction has committed."""
        if item is None:
            return
        await self._queue.enqueue(item, within=within)
        if within is None:
            self.committed(item)

    async def payment_succeeded(self, event: PaymentEvent) -> None:
        await self.enqueue(self.webhook_for_payment(event))

    async def refund_succeeded(self, event: RefundEvent) -> None:
        await self.enqueue(self.webhook_for_refund(event))

    async def subscription_changed(self, event: SubscriptionEvent) -> None:
        await self.enqueue(self._item(event.tenant_id, event.event_type, event.event_id,
                                      subscription_payload(event)))


class WebhookOutbox:
    """The webhook queue as the payments' `EventOutbox`: the event's row is written by the
    unit of work of the payment it reports (payment recorded => event queued, or
    neither), and the delivery worker is woken only after that unit committed, so it
    never looks for a row that is not visible yet. An empty target URL stages nothing."""

    def __init__(self, webhooks: QueueingNotifier) -> None:
        self._webhooks = webhooks

    async def stage(self, uow: UnitOfWork, event: PaymentEvent) -> AfterCommit:
        item = self._webhooks.webhook_for_payment(event)
        if item is None:
            return nothing_after_commit
        await uow.webhooks.enqueue(item)
        return lambda: self._webhooks.committed(item)
