"""Subscriptions on both rails (issue 13; specs 03, 18).

x402: a period is bought with an ordinary x402 payment for the product (POST /verify);
`activate` binds that recorded payment to the wallet's subscription, once per payment
signature, extending from the current period end while active and from now once lapsed.
Stripe: Stripe bills the card and is the source of truth for the periods; we keep what its
webhook events say (keyed by its `sub_…` id) and never let a stale event move a period
backwards. Periods come from `core.periods`; "now" from the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import is_solana_address, new_event_id, new_subscription_id
from cedros_pay.core.models import (
    DEFAULT_TENANT,
    STRIPE_SIGNATURE_PREFIX,
    Product,
    Subscription,
    SubscriptionStatus,
)
from cedros_pay.core.periods import Term, parse_interval, parse_period
from cedros_pay.integrations.stripe.client import (
    CreatedSession,
    StripeEvent,
    SubscriptionSessionRequest,
)
from cedros_pay.resolvers import subscription_events as ev
from cedros_pay.resolvers.admin_auth import verify_ed25519
from cedros_pay.resolvers.quotes import Quote, Quotes
from cedros_pay.resolvers.subscription_events import SubscriptionEvent, SubscriptionNotifier
from cedros_pay.storage.repos import AlreadyExists, PaymentRepo, ProductRepo, SubscriptionRepo

log = logging.getLogger("cedros_pay.subscriptions")

X402, STRIPE = "x402", "stripe"
LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
PRORATIONS = ("create_prorations", "none", "always_invoice")
USED_KEY = "payment_signatures"  # signatures that bought a period, comma-joined
EVENT_AT_KEY = "stripe_event_created"  # newest applied Stripe event (Unix seconds)
ACCESS_PROOF_TTL = 300  # seconds a signed subscriber proof stays good


class SubscriptionGateway(Protocol):
    """The Stripe calls subscriptions make (`integrations.stripe.client.StripeClient`)."""

    async def create_subscription_session(self, req: SubscriptionSessionRequest
                                          ) -> CreatedSession: ...

    async def retrieve_subscription(self, sub_id: str) -> dict[str, Any]: ...

    async def update_subscription(self, sub_id: str, params: Mapping[str, Any]
                                  ) -> dict[str, Any]: ...

    async def cancel_subscription(self, sub_id: str) -> dict[str, Any]: ...

    async def create_portal_session(self, customer_id: str, return_url: str) -> str: ...


@dataclass(frozen=True, slots=True)
class SubscriptionQuote:
    quote: Quote
    term: Term
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class Activation:
    """`subscription` is None when nothing was bought yet; `quote` is set when the request
    did not carry a qualifying payment (the buyer pays it, then activates again)."""

    product: Product
    wallet: str
    term: Term
    subscription: Subscription | None
    quote: Quote | None
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class StatusView:
    subscription: Subscription
    active: bool
    interval: str


@dataclass(frozen=True, slots=True)
class Change:
    subscription: Subscription
    previous_resource: str
    proration_behavior: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeSessionInput:
    resource: str
    interval: str
    interval_days: int | None = None
    trial_days: int | None = None
    customer_email: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    coupon_code: str = ""
    success_url: str = ""
    cancel_url: str = ""


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    status: str | None = None
    product_id: str | None = None
    rail: str | None = None


def rail_of(sub: Subscription) -> str:
    return STRIPE if sub.stripe_subscription_id else X402


def public_id(sub: Subscription) -> str:
    """Stripe's `sub_…` id for a Stripe-billed subscription, else the local id."""
    return sub.stripe_subscription_id or sub.id


def user_of(sub: Subscription) -> str:
    return sub.wallet or sub.stripe_customer_id


def term_of(product: Product) -> Term:
    cfg = product.subscription
    if cfg is None or not cfg.billing_period:
        raise CedrosError(ErrorCode.INVALID_RESOURCE,
                          f"product {product.id!r} is not a subscription product",
                          {"resource": product.id})
    return Term(parse_period(cfg.billing_period), max(1, cfg.billing_interval))


def _missing(name: str) -> CedrosError:
    return CedrosError(ErrorCode.MISSING_FIELD, f"{name} is required", {"field": name})


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _first_item(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    first = data[0] if isinstance(data, list) and data else None
    return first if isinstance(first, Mapping) else {}


def _periods(obj: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A subscription's period: top level (older API versions) or on its first item."""
    item = _first_item(obj)
    start = _ts(obj.get("current_period_start")) or _ts(item.get("current_period_start"))
    end = _ts(obj.get("current_period_end")) or _ts(item.get("current_period_end"))
    return start, end


def _invoice_subscription(obj: Mapping[str, Any]) -> str:
    sub = _id_of(obj.get("subscription"))
    if sub:
        return sub
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return _id_of(details.get("subscription")) if isinstance(details, Mapping) else ""


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


class Subscriptions:
    def __init__(self, *, repo: SubscriptionRepo, products: ProductRepo, quotes: Quotes,
                 payments: PaymentRepo, notifier: SubscriptionNotifier, clock: Clock,
                 grace_period_hours: int = 0, gateway: SubscriptionGateway | None = None,
                 success_url: str = "", cancel_url: str = "") -> None:
        self._repo = repo
        self._products = products
        self._quotes = quotes
        self._payments = payments
        self._notifier = notifier
        self._clock = clock
        self._grace = grace_period_hours
        self._gateway = gateway
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._activating = asyncio.Lock()  # one signature check-and-extend at a time

    # --- reading ------------------------------------------------------------------------

    def grace(self, product: Product | None) -> timedelta:
        hours = product.subscription.grace_period_hours if (
            product is not None and product.subscription is not None) else 0
        return timedelta(hours=hours or self._grace)

    def is_active(self, sub: Subscription, grace: timedelta) -> bool:
        """Spec 18 HasAccess: live status within the period; x402 `active` ones keep access
        for the grace period after it (Stripe runs its own dunning)."""
        if sub.status not in LIVE:
            return False
        now = self._clock.now()
        if now < sub.current_period_end:
            return True
        return (rail_of(sub) == X402 and sub.status is SubscriptionStatus.ACTIVE
                and now < sub.current_period_end + grace)

    async def _latest_for_user(self, tenant: str, user_id: str,
                               product_id: str) -> Subscription | None:
        if user_id.startswith("cus_"):
            found = [s for s in await self._repo.list_by_stripe_customer_id(tenant, user_id)
                     if s.product_id == product_id]
        else:
            found = [s for s in await self._repo.list_by_product(tenant, product_id)
                     if s.wallet == user_id]
        if not found:
            return None
        return max(found, key=lambda s: (s.status in LIVE, s.current_period_end))

    async def status(self, tenant: str, user_id: str, resource: str) -> StatusView:
        """GET /subscription/status: the user's subscription to `resource` (spec 03)."""
        user_id, resource = user_id.strip(), resource.strip()
        if not user_id:
            raise _missing("userId")
        if not resource:
            raise _missing("resource")
        sub = await self._latest_for_user(tenant, user_id, resource)
        if sub is None:
            raise CedrosError(ErrorCode.NOT_FOUND, "no subscription for this user and resource",
                              {"userId": user_id, "resource": resource})
        product = await self._products.get(tenant, resource)
        term = Term(parse_period(sub.billing_period or "month"), max(1, sub.billing_interval))
        return StatusView(sub, self.is_active(sub, self.grace(product)), term.word)

    async def grants_access(self, tenant: str, wallet: str, product: Product) -> bool:
        """The paywall's question: does `wallet` hold a live subscription to `product`?"""
        if not product.is_subscription or not wallet:
            return False
        sub = await self._latest_for_user(tenant, wallet, product.id)
        return sub is not None and self.is_active(sub, self.grace(product))

    async def subscriber(self, tenant: str, resource_id: str, signer: str, signature: str,
                         message: str) -> Subscription | None:
        """The resource endpoint's free pass (issue 13): the subscribed wallet proves itself
        by signing `X-Message: subscription:<resourceId>:<unix seconds>` (Ed25519, within
        `ACCESS_PROOF_TTL`), so knowing a subscriber's public address is not enough."""
        action, _, rest = message.partition(":")
        named, _, stamp = rest.rpartition(":")
        if action != "subscription" or named != resource_id or not stamp.isdigit():
            return None
        age = self._clock.now().timestamp() - int(stamp)
        if abs(age) > ACCESS_PROOF_TTL or not verify_ed25519(signer, signature, message):
            return None
        product = await self._products.get(tenant, resource_id)
        if product is None or not product.active or not product.is_subscription:
            return None
        sub = await self._latest_for_user(tenant, signer, product.id)
        return sub if sub is not None and self.is_active(sub, self.grace(product)) else None

    async def listing(self, tenant: str, where: SubscriptionFilter) -> list[Subscription]:
        """Admin listing, oldest first: one product's, or every catalog product's."""
        if where.rail not in (None, X402, STRIPE):
            raise CedrosError(ErrorCode.INVALID_FIELD, "rail must be x402 or stripe",
                              {"field": "rail"})
        status = None
        if where.status is not None:
            try:
                status = SubscriptionStatus.parse(where.status.strip().lower())
            except ValueError:
                raise CedrosError(ErrorCode.INVALID_FIELD, "unknown subscription status",
                                  {"field": "status"}) from None
        if where.product_id:
            rows = await self._repo.list_by_product(tenant, where.product_id)
        else:
            rows = []
            for product in await self._products.list(tenant, include_inactive=True):
                rows.extend(await self._repo.list_by_product(tenant, product.id))
        rows.sort(key=lambda s: (s.created_at, s.id))
        return [s for s in rows if (status is None or s.status is status)
                and (where.rail is None or rail_of(s) == where.rail)]

    # --- x402 ---------------------------------------------------------------------------

    async def _x402_product(self, tenant: str, resource: str) -> tuple[Product, Term]:
        product = await self._quotes.product(tenant, resource)
        term = term_of(product)
        if product.subscription is None or not product.subscription.allow_x402:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"product {product.id!r} cannot be subscribed with x402",
                              {"resource": product.id})
        return product, term

    @staticmethod
    def _check_interval(term: Term, interval: str, interval_days: int | None) -> None:
        asked = parse_interval(interval, interval_days)
        if asked != term:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"this product bills {term.interval} {term.period.value}(s)",
                              {"field": "interval", "expected": term.word})

    async def quote(self, tenant: str, resource: str, interval: str,
                    interval_days: int | None, coupon_code: str | None) -> SubscriptionQuote:
        """POST /subscription/quote: the product's own x402 quote (coupons, memo) for one
        period starting now (spec 03)."""
        if not interval:
            raise _missing("interval")
        product, term = await self._x402_product(tenant, resource)
        self._check_interval(term, interval, interval_days)
        quote = await self._quotes.quote(tenant, product.id, coupon_code)
        if quote.crypto is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"product {product.id!r} has no x402 price",
                              {"resource": product.id})
        now = self._clock.now()
        return SubscriptionQuote(quote, term, now, term.end(now))

    async def activate(self, tenant: str, product_id: str, wallet: str,
                       payment_signature: str | None,
                       metadata: Mapping[str, str] | None = None) -> Activation:
        """POST /subscription/x402/activate: a recorded x402 payment by `wallet` for the
        product buys one period, once per signature. Without a qualifying payment the
        subscription is left as it is and the answer carries the quote to pay."""
        wallet = wallet.strip()
        if not wallet:
            raise _missing("wallet")
        if not is_solana_address(wallet):
            raise CedrosError(ErrorCode.INVALID_WALLET, "wallet is not a Solana address",
                              {"field": "wallet"})
        product, term = await self._x402_product(tenant, product_id)
        signature = (payment_signature or "").strip()
        async with self._activating:
            current = await self._latest_for_user(tenant, wallet, product.id)
            if signature and await self._qualifies(tenant, signature, wallet, product.id):
                sub = await self._extend(tenant, product, term, wallet, current, signature,
                                         dict(metadata or {}))
                return Activation(product, wallet, term, sub, None,
                                  sub.current_period_start, sub.current_period_end)
        now = self._clock.now()
        start = current.current_period_end if (
            current is not None and self.is_active(current, timedelta())) else now
        quote = await self._quotes.quote(tenant, product.id, None)
        return Activation(product, wallet, term, current, quote, start, term.end(start))

    async def _qualifies(self, tenant: str, signature: str, wallet: str,
                         product_id: str) -> bool:
        if signature.startswith(STRIPE_SIGNATURE_PREFIX):
            return False
        tx = await self._payments.get(tenant, signature)
        if tx is None or tx.wallet != wallet or tx.resource_id != product_id:
            return False
        for sub in await self._repo.list_by_product(tenant, product_id):
            if sub.wallet == wallet and signature in sub.metadata.get(USED_KEY, "").split(","):
                return False
        return True

    async def _extend(self, tenant: str, product: Product, term: Term, wallet: str,
                      current: Subscription | None, signature: str,
                      metadata: dict[str, str]) -> Subscription:
        now = self._clock.now()
        if current is not None and current.status in (*LIVE, SubscriptionStatus.EXPIRED):
            active = current.status in LIVE and now < current.current_period_end
            start = current.current_period_end if active else now
            used = [s for s in current.metadata.get(USED_KEY, "").split(",") if s]
            sub = replace(current, status=SubscriptionStatus.ACTIVE, current_period_start=start,
                          current_period_end=term.end(start), updated_at=now,
                          billing_period=term.period.value, billing_interval=term.interval,
                          cancel_at_period_end=False, cancelled_at=None,
                          metadata={**current.metadata, **metadata,
                                    USED_KEY: ",".join([*used, signature])})
            await self._repo.update(sub)
            await self._emit(ev.RENEWED, sub)
            return sub
        sub = Subscription(
            id=new_subscription_id(), tenant_id=tenant, product_id=product.id,
            status=SubscriptionStatus.ACTIVE, current_period_start=now,
            current_period_end=term.end(now), created_at=now, updated_at=now, wallet=wallet,
            payment_method=X402, billing_period=term.period.value,
            billing_interval=term.interval, metadata={**metadata, USED_KEY: signature})
        await self._repo.create(sub)
        await self._emit(ev.CREATED, sub)
        return sub

    async def expire_overdue(self, tenant: str = DEFAULT_TENANT) -> int:
        """The worker's sweep: x402 subscriptions past their period (and grace) expire."""
        now = self._clock.now()
        count = 0
        for sub in await self._repo.list_expiring(tenant, now):
            if rail_of(sub) != X402:
                continue  # Stripe tells us by webhook
            product = await self._products.get(tenant, sub.product_id)
            if now < sub.current_period_end + self.grace(product):
                continue
            if await self._repo.update_status(tenant, sub.id, SubscriptionStatus.EXPIRED, now):
                sub.status = SubscriptionStatus.EXPIRED
                await self._emit(ev.EXPIRED, sub)
                count += 1
        return count

    # --- lifecycle (both rails) -----------------------------------------------------------

    async def _find(self, tenant: str, subscription_id: str) -> Subscription:
        sub_id = subscription_id.strip()
        if not sub_id:
            raise _missing("subscriptionId")
        sub = (await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
               if sub_id.startswith("sub_") else await self._repo.get(tenant, sub_id))
        if sub is None:
            raise CedrosError(ErrorCode.NOT_FOUND, f"subscription {sub_id!r} not found",
                              {"subscriptionId": sub_id})
        return sub

    def _stripe(self) -> SubscriptionGateway:
        if self._gateway is None:
            raise CedrosError(ErrorCode.STRIPE_ERROR, "Stripe is not configured on this server")
        return self._gateway

    async def cancel(self, tenant: str, subscription_id: str, at_period_end: bool
                     ) -> Subscription:
        """At period end: still active until then; immediately: inactive at once. Stripe
        is told first for a Stripe-billed one; x402 ones cancel locally (spec 03)."""
        sub = await self._find(tenant, subscription_id)
        now = self._clock.now()
        if sub.stripe_subscription_id:
            gw = self._stripe()
            if at_period_end:
                await gw.update_subscription(sub.stripe_subscription_id,
                                             {"cancel_at_period_end": True})
            else:
                await gw.cancel_subscription(sub.stripe_subscription_id)
        if at_period_end:
            sub = replace(sub, cancel_at_period_end=True, updated_at=now)
            await self._repo.update(sub)
            await self._emit(ev.UPDATED, sub)
        else:
            sub = replace(sub, status=SubscriptionStatus.CANCELLED, cancelled_at=now,
                          updated_at=now)
            await self._repo.update(sub)
            await self._emit(ev.CANCELLED, sub)
        return sub

    async def reactivate(self, tenant: str, subscription_id: str) -> Subscription:
        """Undo a cancel at period end before the period ends (spec 18)."""
        sub = await self._find(tenant, subscription_id)
        now = self._clock.now()
        if sub.status not in LIVE or now > sub.current_period_end:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              "only a subscription still in its period can be reactivated",
                              {"field": "subscriptionId", "status": sub.status.value})
        if sub.stripe_subscription_id:
            await self._stripe().update_subscription(sub.stripe_subscription_id,
                                                     {"cancel_at_period_end": False})
        sub = replace(sub, cancel_at_period_end=False, cancelled_at=None, updated_at=now)
        await self._repo.update(sub)
        await self._emit(ev.UPDATED, sub)
        return sub

    async def change(self, tenant: str, subscription_id: str, new_resource: str,
                     proration_behavior: str) -> Change:
        """Switch a Stripe-billed subscription's price to another subscription product's,
        on its existing item (spec 03 change)."""
        behaviour = proration_behavior.strip() or "create_prorations"
        if behaviour not in PRORATIONS:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              "prorationBehavior must be create_prorations, none or "
                              "always_invoice", {"field": "prorationBehavior"})
        if not new_resource.strip():
            raise _missing("newResource")
        sub = await self._find(tenant, subscription_id)
        product = await self._quotes.product(tenant, new_resource.strip())
        term = term_of(product)
        if not sub.stripe_subscription_id:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              "only Stripe-billed subscriptions change plans; an x402 "
                              "subscription buys the new product's period instead",
                              {"field": "subscriptionId"})
        price = product.subscription.stripe_price_id if product.subscription else ""
        if not price:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"product {product.id!r} has no Stripe subscription price",
                              {"resource": product.id})
        gw = self._stripe()
        remote = await gw.retrieve_subscription(sub.stripe_subscription_id)
        item = _id_of(_first_item(remote))
        if not item:
            raise CedrosError(ErrorCode.STRIPE_ERROR, "the Stripe subscription has no item")
        updated = await gw.update_subscription(sub.stripe_subscription_id, {
            "items": [{"id": item, "price": price}], "proration_behavior": behaviour})
        now = self._clock.now()
        start, end = _periods(updated)
        previous = sub.product_id
        sub = replace(sub, product_id=product.id, billing_period=term.period.value,
                      billing_interval=term.interval, updated_at=now,
                      status=self._status(updated.get("status"), sub.status),
                      current_period_start=start or sub.current_period_start,
                      current_period_end=end or sub.current_period_end,
                      metadata={**sub.metadata, "previous_product": previous,
                                "changed_at": now.isoformat()})
        await self._repo.update(sub)
        await self._emit(ev.UPDATED, sub)
        return Change(sub, previous, behaviour)

    async def portal(self, customer_id: str, return_url: str) -> str:
        """POST /subscription/portal: Stripe's billing portal URL, verbatim."""
        customer_id, return_url = customer_id.strip(), return_url.strip()
        if not customer_id:
            raise _missing("customerId")
        if not customer_id.startswith("cus_"):
            raise CedrosError(ErrorCode.INVALID_FIELD, "customerId must be a Stripe cus_ id",
                              {"field": "customerId"})
        if not return_url:
            raise _missing("returnUrl")
        if not return_url.startswith(("https://", "http://")):
            raise CedrosError(ErrorCode.INVALID_FIELD, "returnUrl must be an http(s) URL",
                              {"field": "returnUrl"})
        return await self._stripe().create_portal_session(customer_id, return_url)

    # --- Stripe checkout and events -------------------------------------------------------

    async def stripe_session(self, tenant: str, req: StripeSessionInput) -> CreatedSession:
        """POST /subscription/stripe-session: a Checkout Session in subscription mode for
        the product's recurring price; our metadata rides on the subscription."""
        if not req.interval:
            raise _missing("interval")
        product = await self._quotes.product(tenant, req.resource.strip())
        term = term_of(product)
        self._check_interval(term, req.interval, req.interval_days)
        cfg = product.subscription
        price = cfg.stripe_price_id if cfg is not None else ""
        if not price:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"product {product.id!r} has no Stripe subscription price",
                              {"resource": product.id})
        trial = req.trial_days if req.trial_days is not None else (cfg.trial_days if cfg else 0)
        if not 0 <= trial <= 730:
            raise CedrosError(ErrorCode.INVALID_FIELD, "trialDays must be 0..730",
                              {"field": "trialDays"})
        success = req.success_url or self._success_url
        cancel = req.cancel_url or self._cancel_url
        if not success or not cancel:
            raise CedrosError(ErrorCode.MISSING_FIELD,
                              "successUrl and cancelUrl are required (no stripe defaults)",
                              {"field": "successUrl" if not success else "cancelUrl"})
        metadata = {**req.metadata, "product_id": product.id, "resource_id": product.id,
                    "tenant_id": tenant}
        if req.coupon_code:
            metadata["coupon_code"] = req.coupon_code
        return await self._stripe().create_subscription_session(SubscriptionSessionRequest(
            price_id=price, success_url=success, cancel_url=cancel, metadata=metadata,
            trial_days=trial, customer_email=req.customer_email))

    def stripe_handlers(self) -> dict[str, Any]:
        """The webhook handlers for StripeEvents' `extra=`."""
        return {"customer.subscription.created": self.on_subscription,
                "customer.subscription.updated": self.on_subscription,
                "customer.subscription.deleted": self.on_deleted,
                "invoice.paid": self.on_invoice_paid,
                "invoice.payment_failed": self.on_payment_failed}

    @staticmethod
    def _status(value: Any, default: SubscriptionStatus) -> SubscriptionStatus:
        try:
            return SubscriptionStatus.parse(str(value))
        except ValueError:
            return default  # incomplete, paused...: keep what we had

    async def on_checkout(self, event: StripeEvent) -> None:
        """`checkout.session.completed` in subscription mode: create the record from the
        subscription Stripe made (asking Stripe for its periods)."""
        sub_id = _id_of(event.object.get("subscription"))
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
        await self._upsert(event)

    async def _tenant_product(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = _text_map(obj.get("metadata"))
        tenant = meta.get("tenant_id") or DEFAULT_TENANT
        price = _id_of(_first_item(obj).get("price"))
        if price:
            for p in await self._products.list(tenant, include_inactive=True):
                if p.subscription is not None and p.subscription.stripe_price_id == price:
                    return tenant, p.id
        return tenant, meta.get("product_id") or meta.get("resource_id") or ""

    async def _upsert(self, event: StripeEvent) -> None:
        obj = event.object
        sub_id = _id_of(obj.get("id"))
        if not sub_id.startswith("sub_"):
            return
        tenant, product_id = await self._tenant_product(obj)
        start, end = _periods(obj)
        now = self._clock.now()
        existing = await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
        status = self._status(obj.get("status"), SubscriptionStatus.ACTIVE)
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
                stripe_customer_id=_id_of(obj.get("customer")), stripe_subscription_id=sub_id,
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
                await self._emit(ev.CREATED, sub)
                return
        if self._stale(existing, event, end):
            return
        sub = replace(existing, status=status, updated_at=now,
                      current_period_start=start or existing.current_period_start,
                      current_period_end=end or existing.current_period_end,
                      cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
                      stripe_customer_id=_id_of(obj.get("customer"))
                      or existing.stripe_customer_id,
                      metadata={**existing.metadata, EVENT_AT_KEY: str(event.created)})
        if product_id and product_id != existing.product_id:
            sub.metadata["previous_product"] = existing.product_id
            sub.product_id = product_id
        if status is SubscriptionStatus.CANCELLED and existing.cancelled_at is None:
            sub.cancelled_at = now
        await self._repo.update(sub)
        await self._emit(ev.CANCELLED if status is SubscriptionStatus.CANCELLED
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
        await self._emit(ev.RENEWED, sub)

    async def on_payment_failed(self, event: StripeEvent) -> None:
        """`invoice.payment_failed`: past_due, from the event alone (events are the order of
        record; Stripe is not asked again)."""
        sub = await self._by_invoice(event)
        if sub is None or sub.status in (SubscriptionStatus.CANCELLED,
                                         SubscriptionStatus.PAST_DUE):
            return
        sub = replace(sub, status=SubscriptionStatus.PAST_DUE, updated_at=self._clock.now())
        await self._repo.update(sub)
        await self._emit(ev.PAYMENT_FAILED, sub)

    async def on_deleted(self, event: StripeEvent) -> None:
        """`customer.subscription.deleted`: cancelled."""
        obj = event.object
        sub_id = _id_of(obj.get("id"))
        tenant = _text_map(obj.get("metadata")).get("tenant_id") or DEFAULT_TENANT
        sub = await self._repo.get_by_stripe_subscription_id(tenant, sub_id)
        if sub is None or sub.status is SubscriptionStatus.CANCELLED:
            return
        now = self._clock.now()
        sub = replace(sub, status=SubscriptionStatus.CANCELLED, cancelled_at=now, updated_at=now)
        await self._repo.update(sub)
        await self._emit(ev.CANCELLED, sub)

    async def _emit(self, event_type: str, sub: Subscription) -> None:
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
