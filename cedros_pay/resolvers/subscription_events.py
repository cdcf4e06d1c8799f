"""Subscription lifecycle events for the merchant's backend (issue 13, spec 20 queue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cedros_pay.core.clock import to_rfc3339

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


@runtime_checkable
class SubscriptionNotifier(Protocol):
    """Where subscription events go; the webhook queue's notifier implements it."""

    async def subscription_changed(self, event: SubscriptionEvent) -> None: ...


class NoSubscriptionNotifier:
    async def subscription_changed(self, event: SubscriptionEvent) -> None:
        return None
