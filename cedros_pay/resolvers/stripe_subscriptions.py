"""Stripe-billed subscriptions from Stripe's webhook events (issue 13, spec 21).

Stripe is the source of truth for these periods: we store its `current_period_start/end`,
keyed by its `sub_…` id, and never compute them. Events may come twice or out of order:
one older than the newest applied (by the event's `created`) or with a period end before
the stored one changes nothing; `invoice.payment_failed` is taken from the event alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from cedros_pay.core.clock import Clock
from cedros_pay.core.ids import new_subscription_id
from cedros_pay.core.models import DEFAULT_TENANT, Subscription, SubscriptionStatus
from cedros_pay.integrations.stripe.client import StripeEvent
from cedros_pay.resolvers import subscription_events as ev
from cedros_pay.resolvers.subscription_events import (
    EVENT_AT_KEY,
    STRIPE,
    SubscriptionEmitter,
)
from cedros_pay.storage.repos import AlreadyExists, ProductRepo, SubscriptionRepo

log = logging.getLogger("cedros_pay.subscriptions")


class SubscriptionReader(Protocol):
    """GET /v1/subscriptions/{id} (the StripeClient)."""

    async def retrieve_subscription(self, sub_id: str) -> dict[str, Any]: ...


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def first_item(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    first = data[0] if isinstance(data, list) and data else None
    return first if isinstance(first, Mapping) else {}


def subscription_period(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A subscription's period: top level (older API versions) or on its first item."""
    item = first_item(obj)
    start = _ts(obj.get("current_period_start")) or _ts(item.get("current_period_start"))
    end = _ts(obj.get("current_period_end")) or _ts(item.get("current_period_end"))
    return start, end


def _invoice_subscription(obj: Mapping[str, Any]) -> str:
    sub = id_of(obj.get("subscription"))
    if sub:
        return sub
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return id_of(details.get("subscription")) if isinstance(details, Mapping) else ""


def _invoice_period(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    lines = obj.get("lines")
    data = lines.get("data") if isinstance(lines, Mapping) else None
    line = data[0] if isinstance(data, list) and data else None
    period = line.get("period") if isinstance(line, Mapping) else None
    if not isinstance(period, Mapping):
        return _ts(obj.get("period_start")), _ts(obj.get("period_end"))
    return _ts(period.get("start")), _ts(period.get("end"))


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def stripe_status(value: Any, default: SubscriptionStatus) -> SubscriptionStatus:
    """Stripe's status in our spelling; one we do not keep (incomplete, paused) keeps
    what we had."""
    try:
        return SubscriptionStatus.parse(str(value))
    except ValueError:
        return default


class StripeSubscriptionEvents:
    def __init__(self, *, repo: SubscriptionRepo, products: ProductRepo,
                 emitter: SubscriptionEmitter, clock: Clock,
                 reader: SubscriptionReader | None = None) -> None:
        self._repo = repo
        self._products = products
        self._emitter = emitter
        self._clock = clock
        self._gateway = reader

    def handlers(self) -> dict[str, Callable[[StripeEvent], Awaitable[None]]]:
        """By event type, for StripeEvents' `extra=` (checkout comes separately)."""
        return {"customer.subscription.created": self.on_subscription,
                "customer.subscription.updated": self.on_subscription,
                "customer.subscription.deleted": self.on_deleted,
                "invoice.paid": self.on_invoice_paid,
                "invoice.payment_failed": self.on_payment_failed}

    async def on_checkout(self, event: StripeEvent) -> None:
        """`checkout.session.completed` in subscription mode: create the record from the
        subscription Stripe made (asking Stripe for its periods)."""
        sub_id = id_of(event.object.get("subscription"))
        if not sub_id:
            return
        remote = event.object.get("subscription")
        if not isinstance(remote, Mapping) and self._gateway is not None:
            remote = await self._gateway.retrieve_subscription(sub_id)
        obj = dict(remote) if isinstance(remote, Mapping) else {"id": sub_id}
        obj.setdefault("customer", event.object.get("customer"))
        meta = {**_text_map(event.object.get("metadata")), **_text_map(obj.get("metadata"))}
        obj["metadata"] = meta
        await self._upsert(StripeEvent(event.id, event.type, obj, event.created))

    async def on_subscription(self, event: StripeEvent) -> None:
        """`customer.subscription.created` / `.updated`: create or apply (never backwards)."""
        await self._upsert(event)

    async def _tenant_product(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = _text_map(obj.get("metadata"))
        tenant = meta.get("tenant_id") or DEFAULT_TENANT
        price = id_of(first_item(obj).get("price"))
        if price:
            for p in await self._products.list(tenant, include_inactive=True):
                if p.subscription is not None and p.subscription.stripe_price_id == price:
                    return tenant, p.id
        return tenant, meta.get("product_id") or meta.get("resource_id") or ""

    async def _upsert(self, event: StripeEvent) -> None:
        obj = event.object
        sub_id = id_of(obj.get("id"))
        if not sub_id.startswith("sub_"):
            return
        tenant, product_id = await self._tenant_product(obj)
        start, end = subscription_period(obj)
        now = self._clock.now()
        existing = await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
        status = stripe_status(obj.get("status"), SubscriptionStatus.ACTIVE)
        if existing is None:
            if not product_id:
                log.warning("stripe subscription without product", extra={"sub": sub_id})
                return
            product = await self._products.get(tenant, product_id)
            cfg = product.subscription if product is not None else None
            sub = Subscription(
                id=new_subscription_id(), tenant_id=tenant, product_id=product_id,
                status=status, current_period_start=start or now,
                current_period_end=end or now, created_at=now, updated_at=now,
                stripe_customer_id=id_of(obj.get("customer")), stripe_subscription_id=sub_id,
                payment_method=STRIPE, billing_period=cfg.billing_period if cfg else "",
                billing_interval=cfg.billing_interval if cfg else 1,
                trial_end=_ts(obj.get("trial_end")),
                cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
                metadata={**_text_map(obj.get("metadata")), EVENT_AT_KEY: str(event.created)})
            try:
                await self._repo.create(sub)
            except AlreadyExists:  # a racing delivery created it: apply this event to it
                existing = await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
                if existing is None:
                    raise
            else:
                await self._emitter.emit(ev.CREATED, sub)
                return
        if self._stale(existing, event, end):
            return
        sub = replace(existing, status=status, updated_at=now,
                      current_period_start=start or existing.current_period_start,
                      current_period_end=end or existing.current_period_end,
                      cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
                      stripe_customer_id=id_of(obj.get("customer"))
                      or existing.stripe_customer_id,
                      metadata={**existing.metadata, EVENT_AT_KEY: str(event.created)})
        if product_id and product_id != existing.product_id:
            sub.metadata["previous_product"] = existing.product_id
            sub.product_id = product_id
        if status is SubscriptionStatus.CANCELLED and existing.cancelled_at is None:
            sub.cancelled_at = now
        await self._repo.update(sub)
        await self._emitter.emit(ev.CANCELLED if status is SubscriptionStatus.CANCELLED
                         else ev.UPDATED, sub)

    @staticmethod
    def _stale(sub: Subscription, event: StripeEvent, end: datetime | None) -> bool:
        """Older than the newest event applied, or a period end before the stored one."""
        try:
            seen = int(sub.metadata.get(EVENT_AT_KEY, "0"))
        except ValueError:
            seen = 0
        if event.created and event.created < seen:
            return True
        return end is not None and end < sub.current_period_end

    async def _by_invoice(self, event: StripeEvent) -> Subscription | None:
        sub_id = _invoice_subscription(event.object)
        if not sub_id:
            return None
        meta = _text_map(event.object.get("subscription_details", {}).get("metadata")
                         if isinstance(event.object.get("subscription_details"), Mapping)
                         else None)
        tenant = meta.get("tenant_id") or DEFAULT_TENANT
        return await self._repo.get_by_stripe_subscription_id(tenant, sub_id)

    async def on_invoice_paid(self, event: StripeEvent) -> None:
        """`invoice.paid`: active with the invoice line's new period (forward only)."""
        sub = await self._by_invoice(event)
        if sub is None:
            return
        start, end = _invoice_period(event.object)
        now = self._clock.now()
        forward = end is not None and end > sub.current_period_end
        if not forward and sub.status is SubscriptionStatus.ACTIVE:
            return  # a duplicate or stale invoice
        sub = replace(sub, status=SubscriptionStatus.ACTIVE, updated_at=now,
                      current_period_start=start if forward and start else
                      sub.current_period_start,
                      current_period_end=end if forward and end else sub.current_period_end)
        await self._repo.update(sub)
        await self._emitter.emit(ev.RENEWED, sub)

    async def on_payment_failed(self, event: StripeEvent) -> None:
        """`invoice.payment_failed`: past_due, from the event alone (events are the order of
        record; Stripe is not asked again)."""
        sub = await self._by_invoice(event)
        if sub is None or sub.status in (SubscriptionStatus.CANCELLED,
                                         SubscriptionStatus.PAST_DUE):
            return
        sub = replace(sub, status=SubscriptionStatus.PAST_DUE, updated_at=self._clock.now())
        await self._repo.update(sub)
        await self._emitter.emit(ev.PAYMENT_FAILED, sub)

    async def on_deleted(self, event: StripeEvent) -> None:
        """`customer.subscription.deleted`: cancelled."""
        obj = event.object
        sub_id = id_of(obj.get("id"))
        tenant = _text_map(obj.get("metadata")).get("tenant_id") or DEFAULT_TENANT
        sub = await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
        if sub is None or sub.status is SubscriptionStatus.CANCELLED:
            return
        now = self._clock.now()
        sub = replace(sub, status=SubscriptionStatus.CANCELLED, cancelled_at=now, updated_at=now)
        await self._repo.update(sub)
        await self._emitter.emit(ev.CANCELLED, sub)
