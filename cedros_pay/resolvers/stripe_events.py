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

Handlers are looked up by event type. Subscription events (`customer.subscription.*`,
`invoice.*`, subscription-mode `checkout.session.completed`) belong to the subscriptions
resolver: pass its handlers as `extra` (and `subscription_checkout`) when it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
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
from cedros_pay.resolvers.events import Notifier, PaymentEvent
from cedros_pay.storage.repos import CouponRepo, PaymentRepo, StripeSessionRepo

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
    def __init__(self, *, verifier: EventVerifier, webhook_secret: str,
                 seen: SeenEvents, payments: PaymentRepo, sessions: StripeSessionRepo,
                 coupons: CouponRepo, notifier: Notifier, clock: Clock,
                 extra: Mapping[str, Handler] | None = None,
                 subscription_checkout: Handler | None = None) -> None:
        self._verifier = verifier
        self._secret = webhook_secret
        self._seen = seen
        self._payments = payments
        self._sessions = sessions
        self._coupons = coupons
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
        """A Checkout session in payment mode is paid: record `stripe:{session_id}` once,
        count its coupons once, tell the notifier once (spec 21 HandleCompletion)."""
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
        if not await self._payments.record(tx):
            log.info("stripe session already recorded", extra={"session_id": session_id})
            return
        # The payment stands from here: what follows is logged on failure, never undone.
        await self._complete_session(tenant, session_id, local, tx, email)
        await self._count_coupons(tenant, metadata.get("coupon_code", ""))
        await self._notifier.payment_succeeded(PaymentEvent(
            event_id=new_event_id(), event_timestamp=now, tenant_id=tenant,
            resource_id=resource_id, method="stripe", paid_at=now,
            fiat_amount_cents=cents, fiat_currency=currency, stripe_session_id=session_id,
            stripe_customer=customer or email, metadata=metadata))

    async def _complete_session(self, tenant: str, session_id: str,
                                local: StripeSession | None, tx: PaymentTransaction,
                                email: str) -> None:
        try:
            if local is None:  # created elsewhere (another instance's store, the dashboard)
                await self._sessions.save(StripeSession(
                    id=session_id, tenant_id=tenant, resource_id=tx.resource_id,
                    amount_cents=tx.amount_atomic, currency=tx.asset.lower(),
                    customer_email=email, metadata=dict(tx.metadata), created_at=tx.created_at,
                    status=StripeSessionStatus.COMPLETED, completed_at=tx.created_at))
            else:
                await self._sessions.mark_completed(tenant, session_id, tx.created_at)
        except Exception:
            log.exception("could not mark the Checkout session completed",
                          extra={"session_id": session_id})

    async def _count_coupons(self, tenant: str, codes: str) -> None:
        """Best effort after payment (spec 19), as for x402: logged, never undone."""
        for code in dict.fromkeys(c for c in codes.split(",") if c):
            try:
                if not await self._coupons.increment_usage(tenant, code):
                    log.warning("coupon usage not counted", extra={"coupon_code": code})
            except Exception:
                log.exception("coupon usage increment failed", extra={"coupon_code": code})
