"""Subscription lifecycle events for the merchant's backend (issue 13, spec 20 queue)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cedros_pay.core.clock import Clock, to_rfc3339
from cedros_pay.core.ids import new_event_id
from cedros_pay.core.models import Subscription

log = logging.getLogger("cedros_pay.subscriptions")

X402, STRIPE = "x402", "stripe"
# Bookkeeping kept in a subscription's metadata, never sent to the merchant.
USED_KEY = "payment_signatures"  # x402 signatures that bought a period, comma-joined
EVENT_AT_KEY = "stripe_event_created"  # newest applied Stripe event (Unix seconds)

CREATED = "subscription.created"
UPDATED = "subscription.updated"
CANCELLED = "subscription.cancelled"
RENEWED = "subscription.renewed"
PAYMENT_FAILED = "subscription.payment_failed"
EXPIRED = "subscription.expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionEvent:
    event_id: str
    event_type: str
    event_timestamp: datetime
    tenant_id: str
    subscription_id: str  # Stripe's `sub_…` for a Stripe-billed one, else the local id
    product_id: str
    user_id: str  # the wallet (x402) or the Stripe customer
    status: str
    rail: str  # "x402" | "stripe"
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


def subscription_payload(e: SubscriptionEvent) -> dict[str, Any]:
    return {
        "eventId": e.event_id, "eventType": e.event_type,
        "eventTimestamp": to_rfc3339(e.event_timestamp),
        "subscriptionId": e.subscription_id, "productId": e.product_id,
        "resourceId": e.product_id, "userId": e.user_id, "status": e.status,
        "rail": e.rail, "currentPeriodStart": to_rfc3339(e.current_period_start),
        "currentPeriodEnd": to_rfc3339(e.current_period_end),
        "cancelAtPeriodEnd": e.cancel_at_period_end, "metadata": e.metadata,
    }


def rail_of(sub: Subscription) -> str:
    return STRIPE if sub.stripe_subscription_id else X402


def public_id(sub: Subscription) -> str:
    """Stripe's `sub_…` id for a Stripe-billed subscription, else the local id."""
    return sub.stripe_subscription_id or sub.id


def user_of(sub: Subscription) -> str:
    return sub.wallet or sub.stripe_customer_id


@runtime_checkable
class SubscriptionNotifier(Protocol):
    """Where subscription events go; the webhook queue's notifier implements it."""

    async def subscription_changed(self, event: SubscriptionEvent) -> None: ...


class SubscriptionFanOut:
    """Tells every notifier that takes subscription events (the webhook queue, and an
    embedder's notifier when it implements `subscription_changed`)."""

    def __init__(self, notifiers: Sequence[object]) -> None:
        self._notifiers = [n for n in notifiers if isinstance(n, SubscriptionNotifier)]

    async def subscription_changed(self, event: SubscriptionEvent) -> None:
        for notifier in self._notifiers:
            await notifier.subscription_changed(event)


class SubscriptionEmitter:
    """Turns a changed subscription into its event for the notifier (the webhook queue)."""

    def __init__(self, notifier: SubscriptionNotifier, clock: Clock) -> None:
        self._notifier = notifier
        self._clock = clock

    async def emit(self, event_type: str, sub: Subscription) -> None:
        """Through the webhook queue; a failure to enqueue is logged, the change stands."""
        try:
            await self._notifier.subscription_changed(SubscriptionEvent(
                event_id=new_event_id(), event_type=event_type,
                event_timestamp=self._clock.now(), tenant_id=sub.tenant_id,
                subscription_id=public_id(sub), product_id=sub.product_id,
                user_id=user_of(sub), status=sub.status.value, rail=rail_of(sub),
                current_period_start=sub.current_period_start,
                current_period_end=sub.current_period_end,
                cancel_at_period_end=sub.cancel_at_period_end,
                metadata={k: v for k, v in sub.metadata.items()
                          if k not in (USED_KEY, EVENT_AT_KEY)}))
        except Exception:
            log.exception("subscription event not queued", extra={"event_type": event_type})
