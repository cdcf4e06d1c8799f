"""Stripe webhooks: verified events, processed before the 2xx, at most once (spec 07, 21).

Order of work for one delivery:
1. the raw body's `Stripe-Signature` is verified (SDK, 300 s tolerance) before anything
   else is read; a refusal records nothing, so the genuine event with the same id is
   still accepted afterwards;
2. the event id is claimed (a lease in the shared idempotency store): a redelivery of a
   processed event is answered as a duplicate, one still running gets 409;
3. the handler runs; if it fails, the claim is released so Stripe's redelivery is
   processed, otherwise the id is remembered for `SEEN_TTL`.
Beneath the event id, the payment record `stripe:{session_id}` is the real guard: its
insert is atomic (spec 13), so a second event about a paid session changes nothing.

A paid session is one unit of work (`storage.repos.UnitOfWork`): the payment row, the
session completed, the coupon uses (when coupons live in the store's database) and the
merchant's webhook (the outbox) commit together or not at all, so a failure leaves
nothing and Stripe's redelivery does it all once. Coupons from another source (a YAML
file) have their counter in process memory, outside any transaction: they are counted
after the commit, best effort, as that counter does not survive a restart anyway.

Handlers are looked up by event type. Subscription events (`customer.subscription.*`,
`invoice.*`, subscription-mode `checkout.session.completed`) belong to the subscriptions
resolver: pass its handlers as `extra` (and `subscription_checkout`) when it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_event_id
from cedros_pay.core.models import (
    DEFAULT_TENANT,
    STRIPE_SIGNATURE_PREFIX,
    PaymentTransaction,
    StripeSession,
    StripeSessionStatus,
)
from cedros_pay.integrations.stripe.client import StripeEvent
from cedros_pay.resolvers.events import (
    AfterCommit,
    EventOutbox,
    Notifier,
    PaymentEvent,
    nothing_after_commit,
)
from cedros_pay.storage.repos import (
    CouponRepo,
    CouponWrites,
    SessionWrites,
    StripeSessionRepo,
    UnitOfWork,
)

log = logging.getLogger("cedros_pay.stripe_events")

SEEN_TTL = 3 * 24 * 3600.0  # Stripe retries an undelivered event for up to three days
CLAIM_LEASE = 120.0  # longer than one handler may run (the route's deadline is 60 s)
COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
PAID_STATUSES = ("paid", "no_payment_required")

Handler = Callable[[StripeEvent], Awaitable[None]]


class EventVerifier(Protocol):
    def construct_event(self, payload: bytes, signature: str | None,
                        secret: str) -> StripeEvent: ...


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    duplicate: bool = False
    handled: bool = False  # False: a type nobody handles, acknowledged and ignored


class EventInProgress(CedrosError):
    """The same event is being processed by another delivery: 409, Stripe retries."""

    @property
    def http_status(self) -> int:
        return 409


def _id_of(value: Any) -> str:
    """An expandable Stripe field: the id, or the expanded object's id."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


class SeenEvents(Protocol):
    """Which event ids were processed, shared by every instance (the idempotency store
    serves it: bootstrap adapts it). A claim is a lease, so a dead worker frees its ids."""

    async def seen(self, key: str) -> bool: ...

    async def claim(self, key: str, lease: float) -> str | None: ...

    async def remember(self, key: str, token: str, ttl: float) -> None: ...

    async def release(self, key: str, token: str) -> None: ...


class StripeEvents:
    """`coupons` is the catalog's coupon repository; `coupons_in_store` says it is the
    store's table (a database source), counted inside the unit of work, else after it.
    `outbox` stages the merchant's event in the unit (None: no webhook); `notifier` is
    told after the commit and must not queue the event again."""

    def __init__(self, *, verifier: EventVerifier, webhook_secret: str,
                 seen: SeenEvents, sessions: StripeSessionRepo,
                 unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
                 coupons: CouponRepo, coupons_in_store: bool, notifier: Notifier,
                 clock: Clock, outbox: EventOutbox | None = None,
                 extra: Mapping[str, Handler] | None = None,
                 subscription_checkout: Handler | None = None) -> None:
        self._verifier = verifier
        self._secret = webhook_secret
        self._seen = seen
        self._sessions = sessions
        self._unit_of_work = unit_of_work
        self._coupons = coupons
        self._coupons_in_store = coupons_in_store
        self._outbox = outbox
        self._notifier = notifier
        self._clock = clock
        self._subscription_checkout = subscription_checkout
        self._handlers: dict[str, Handler] = {COMPLETED: self._session_paid,
                                              ASYNC_SUCCEEDED: self._session_paid,
                                              **(extra or {})}

    async def receive(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        """POST /webhook/stripe: verify, then process once (see the module docstring)."""
        if not self._secret:
            raise CedrosError(ErrorCode.INVALID_SIGNATURE,
                              "no stripe.webhook_secret is configured; events cannot be "
                              "verified")
        event = self._verifier.construct_event(payload, signature, self._secret)
        if not event.id:
            raise CedrosError(ErrorCode.INVALID_FIELD, "the event has no id", {"field": "id"})
        handler = self._handlers.get(event.type)
        if handler is None:
            return WebhookOutcome(event.id, event.type)
        key = f"stripe-event:{event.id}"
        duplicate = WebhookOutcome(event.id, event.type, duplicate=True, handled=True)
        if await self._seen.seen(key):
            return duplicate
        token = await self._seen.claim(key, CLAIM_LEASE)
        if token is not None and await self._seen.seen(key):
            await self._seen.release(key, token)  # finished between our get and claim
            return duplicate
        if token is None:
            raise EventInProgress(ErrorCode.INVALID_FIELD,
                                  "this event is being processed; retry later",
                                  {"eventId": event.id, "reason": "in_progress"})
        try:
            await handler(event)
        except BaseException:
            await self._seen.release(key, token)
            raise
        try:
            await self._seen.remember(key, token, SEEN_TTL)
        except Exception:  # processed; the payment record still refuses a second run
            log.exception("could not remember a processed Stripe event",
                          extra={"event_id": event.id})
        return WebhookOutcome(event.id, event.type, handled=True)

    async def _session_paid(self, event: StripeEvent) -> None:
        """A Checkout session in payment mode is paid (spec 21 HandleCompletion): record
        `stripe:{session_id}` once, in one unit of work with the session completed, its
        coupons counted and its event staged; wake delivery and tell the notifier after
        the commit."""
        s = event.object
        if s.get("mode") == "subscription":
            if self._subscription_checkout is not None:
                await self._subscription_checkout(event)
            return
        if s.get("mode") not in (None, "payment"):
            return
        if s.get("payment_status") not in PAID_STATUSES:
            return  # an async method: `async_payment_succeeded` follows when it clears
        session_id = str(s.get("id") or "")
        metadata = _text_map(s.get("metadata"))
        resource_id = metadata.get("resource_id", "")
        if not session_id or not resource_id:
            raise CedrosError(ErrorCode.MISSING_FIELD,
                              "the Checkout session has no resource_id in its metadata",
                              {"field": "metadata.resource_id", "sessionId": session_id})
        tenant = metadata.get("tenant_id") or DEFAULT_TENANT
        local = await self._sessions.get(tenant, session_id)
        currency = str(s.get("currency") or (local.currency if local else "usd")).lower()
        amount = s.get("amount_total")
        cents = amount if isinstance(amount, int) else (local.amount_cents if local else 0)
        details = s.get("customer_details")
        email = str(s.get("customer_email") or (details.get("email") if isinstance(
            details, Mapping) else "") or "")
        customer = _id_of(s.get("customer"))
        payment_intent = _id_of(s.get("payment_intent"))
        now = self._clock.now()
        recorded = {**(local.metadata if local else {}), **metadata,
                    "method": "stripe", "stripe_session_id": session_id,
                    "currency": currency, "customer_email": email,
                    "stripe_customer": customer, "payment_intent": payment_intent}
        tx = PaymentTransaction(
            signature=STRIPE_SIGNATURE_PREFIX + session_id, tenant_id=tenant,
            resource_id=resource_id, wallet=customer or email, amount_atomic=cents,
            asset=currency.upper(), created_at=now,
            metadata={k: v for k, v in recorded.items() if v})
        codes = tuple(dict.fromkeys(c for c in metadata.get("coupon_code", "").split(",")
                                    if c))
        paid = PaymentEvent(
            event_id=new_event_id(), event_timestamp=now, tenant_id=tenant,
            resource_id=resource_id, method="stripe", paid_at=now,
            fiat_amount_cents=cents, fiat_currency=currency, stripe_session_id=session_id,
            stripe_customer=customer or email, metadata=metadata)
        after_commit: AfterCommit = nothing_after_commit
        async with self._unit_of_work() as uow:
            if not await uow.payments.record(tx):
                log.info("stripe session already recorded", extra={"session_id": session_id})
                return  # nothing was written in this unit
            await self._complete_session(uow.sessions, session_id, local, tx, email)
            if self._coupons_in_store:
                await self._count_coupons(uow.coupons, tenant, codes)
            if self._outbox is not None:
                after_commit = await self._outbox.stage(uow, paid)
        after_commit()
        if not self._coupons_in_store:
            try:
                await self._count_coupons(self._coupons, tenant, codes)
            except Exception:  # the payment stands; an in-memory counter is best effort
                log.exception("coupon usage increment failed",
                              extra={"coupon_codes": ",".join(codes)})
        await self._notifier.payment_succeeded(paid)

    @staticmethod
    async def _complete_session(sessions: SessionWrites, session_id: str,
                                local: StripeSession | None, tx: PaymentTransaction,
                                email: str) -> None:
        if local is None:  # created elsewhere (another instance's store, the dashboard)
            await sessions.save(StripeSession(
                id=session_id, tenant_id=tx.tenant_id, resource_id=tx.resource_id,
                amount_cents=tx.amount_atomic, currency=tx.asset.lower(),
                customer_email=email, metadata=dict(tx.metadata), created_at=tx.created_at,
                status=StripeSessionStatus.COMPLETED, completed_at=tx.created_at))
        elif not await sessions.mark_completed(tx.tenant_id, session_id, tx.created_at):
            log.info("Checkout session was not pending", extra={"session_id": session_id})

    @staticmethod
    async def _count_coupons(coupons: CouponWrites, tenant: str,
                             codes: tuple[str, ...]) -> None:
        """Count each applied code once (spec 19). A use refused at its limit leaves the
        payment standing (the customer has paid): logged, not raised."""
        for code in codes:
            if not await coupons.increment_usage(tenant, code):
                log.warning("coupon usage not counted", extra={"coupon_code": code})
