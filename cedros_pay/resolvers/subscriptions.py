"""Subscriptions on both rails (issue 13; specs 03, 18).

x402: a period is bought with an ordinary x402 payment for the product (POST /verify);
`activate` binds that recorded payment to the wallet's subscription, once per payment
signature, extending from the current period end while active and from now once lapsed.
Stripe: sessions and lifecycle calls go to Stripe first; its webhook events
(`stripe_subscriptions`) keep the local record. Periods come from `core.periods`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import is_solana_address
from cedros_pay.core.models import (
    STRIPE_SIGNATURE_PREFIX,
    Product,
    Subscription,
    SubscriptionStatus,
)
from cedros_pay.core.periods import Term, parse_interval, parse_period
from cedros_pay.integrations.stripe.client import (
    CreatedSession,
    SubscriptionSessionRequest,
)
from cedros_pay.resolvers import subscription_events as ev
from cedros_pay.resolvers.admin_auth import AdminAuth, verify_ed25519
from cedros_pay.resolvers.quotes import Quote, Quotes
from cedros_pay.resolvers.stripe_subscriptions import (
    StripeSubscriptionEvents,
    first_item,
    id_of,
    stripe_status,
    subscription_period,
)
from cedros_pay.resolvers.subscription_events import (
    STRIPE,
    USED_KEY,
    X402,
    SubscriptionEmitter,
    SubscriptionNotifier,
    rail_of,
)
from cedros_pay.resolvers.subscription_proofs import (
    ACCESS_PROOF_TTL,
    CANCEL_AT_PERIOD_END,
    CANCEL_NOW,
    REACTIVATE,
    LifecycleGuard,
    LifecycleProof,
)
from cedros_pay.storage.repos import (
    AlreadyExists,
    PaymentRepo,
    ProductRepo,
    SubscriptionRepo,
)

LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
PRORATIONS = ("create_prorations", "none", "always_invoice")
ACTIVATE_ATTEMPTS = 8  # lost compare-and-sets before an activation gives up
_PAYMENT_IDS = uuid.UUID("6f1c3e52-8a7d-4b0e-9c61-2d5f7a9e4b13")  # uuid5 namespace


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


def term_of(product: Product) -> Term:
    cfg = product.subscription
    if cfg is None or not cfg.billing_period:
        raise CedrosError(ErrorCode.INVALID_RESOURCE,
                          f"product {product.id!r} is not a subscription product",
                          {"resource": product.id})
    return Term(parse_period(cfg.billing_period), max(1, cfg.billing_interval))


def payment_subscription_id(tenant: str, signature: str) -> str:
    """The id of a subscription first bought by `signature`: a UUID fixed by the payment,
    so the primary key lets only one racing activation create it."""
    return str(uuid.uuid5(_PAYMENT_IDS, f"{tenant}:{signature}"))


def _missing(name: str) -> CedrosError:
    return CedrosError(ErrorCode.MISSING_FIELD, f"{name} is required", {"field": name})




class Subscriptions:
    def __init__(self, *, repo: SubscriptionRepo, products: ProductRepo, quotes: Quotes,
                 payments: PaymentRepo, notifier: SubscriptionNotifier, clock: Clock,
                 grace_period_hours: int = 0, gateway: SubscriptionGateway | None = None,
                 success_url: str = "", cancel_url: str = "",
                 admin_auth: AdminAuth | None = None) -> None:
        self._repo = repo
        self._products = products
        self._quotes = quotes
        self._payments = payments
        self._clock = clock
        self._grace = grace_period_hours
        self._gateway = gateway
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._emitter = SubscriptionEmitter(notifier, clock)
        self._guard = LifecycleGuard(admin_auth, clock)
        self.stripe_events = StripeSubscriptionEvents(
            repo=repo, products=products, emitter=self._emitter, clock=clock, reader=gateway)

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

    async def subscriber(self, tenant: str, resource_id: str, signer: str, signature: str,
                         message: str) -> Subscription | None:
        """The resource endpoint's free pass (issue 13): the subscribed wallet proves itself
        by signing `X-Message: subscription:<resourceId>:<unix seconds>` (Ed25519, within
        `ACCESS_PROOF_TTL`), so knowing a subscriber's public address is not enough."""
        action, _, rest = message.partition(":")
        named, _, stamp = rest.rpartition(":")
        # ASCII digits only, and few: int() refuses "²" and 5,000-digit strings alike.
        if (action != "subscription" or named != resource_id or not stamp.isascii()
                or not stamp.isdigit() or len(stamp) > 12):
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
        subscription is left as it is and the answer carries the quote to pay.

        Once per signature holds across processes sharing the database because the write
        itself is the claim: an extension is a compare-and-set on the row it read
        (`replace_if_unchanged`), a first subscription is inserted under an id derived from
        the tenant and signature (`payment_subscription_id`), so of racing activations one
        writes and the others lose the write, re-read, and find the signature spent."""
        wallet = wallet.strip()
        if not wallet:
            raise _missing("wallet")
        if not is_solana_address(wallet):
            raise CedrosError(ErrorCode.INVALID_WALLET, "wallet is not a Solana address",
                              {"field": "wallet"})
        product, term = await self._x402_product(tenant, product_id)
        signature = (payment_signature or "").strip()
        for _ in range(ACTIVATE_ATTEMPTS):
            current = await self._latest_for_user(tenant, wallet, product.id)
            if not signature or not await self._qualifies(tenant, signature, wallet,
                                                          product.id):
                break
            sub = await self._extend(tenant, product, term, wallet, current, signature,
                                     dict(metadata or {}))
            if sub is not None:
                return Activation(product, wallet, term, sub, None,
                                  sub.current_period_start, sub.current_period_end)
        else:
            raise CedrosError(ErrorCode.DATABASE_ERROR,
                              "the subscription kept changing while activating; retry",
                              {"subscriptionId": current.id if current else ""})
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
                      metadata: dict[str, str]) -> Subscription | None:
        """The period `signature` buys, written as one claim; None when a racing writer
        changed the row first (the caller re-reads and checks the signature again)."""
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
            if not await self._repo.replace_if_unchanged(sub, current):
                return None
            await self._emitter.emit(ev.RENEWED, sub)
            return sub
        sub = Subscription(
            id=payment_subscription_id(tenant, signature), tenant_id=tenant,
            product_id=product.id, status=SubscriptionStatus.ACTIVE, current_period_start=now,
            current_period_end=term.end(now), created_at=now, updated_at=now, wallet=wallet,
            payment_method=X402, billing_period=term.period.value,
            billing_interval=term.interval, metadata={**metadata, USED_KEY: signature})
        try:
            await self._repo.create(sub)
        except AlreadyExists:
            return None
        await self._emitter.emit(ev.CREATED, sub)
        return sub

    async def expire_overdue(self, tenant: str | None = None) -> int:
        """The worker's sweep: x402 subscriptions past their period (and grace) expire,
        in every tenant unless one is named."""
        now = self._clock.now()
        count = 0
        for sub in await self._repo.list_expiring(tenant, now):
            if rail_of(sub) != X402:
                continue  # Stripe tells us by webhook
            product = await self._products.get(sub.tenant_id, sub.product_id)
            if now < sub.current_period_end + self.grace(product):
                continue
            if await self._repo.update_status(sub.tenant_id, sub.id,
                                              SubscriptionStatus.EXPIRED, now):
                sub.status = SubscriptionStatus.EXPIRED
                await self._emitter.emit(ev.EXPIRED, sub)
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

    async def cancel(self, tenant: str, subscription_id: str, at_period_end: bool, *,
                     proof: LifecycleProof) -> Subscription:
        """At period end: still active until then; immediately: inactive at once. Stripe
        is told first for a Stripe-billed one; x402 ones cancel locally (spec 03), on the
        subscriber's signature or an admin's (`subscription_proofs`)."""
        sub = await self._find(tenant, subscription_id)
        await self._guard.authorize(
            tenant, sub, CANCEL_AT_PERIOD_END if at_period_end else CANCEL_NOW, proof)
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
            await self._emitter.emit(ev.UPDATED, sub)
        else:
            sub = replace(sub, status=SubscriptionStatus.CANCELLED, cancelled_at=now,
                          updated_at=now)
            await self._repo.update(sub)
            await self._emitter.emit(ev.CANCELLED, sub)
        return sub

    async def reactivate(self, tenant: str, subscription_id: str, *,
                         proof: LifecycleProof) -> Subscription:
        """Undo a cancel at period end before the period ends (spec 18); proven as a
        cancel is."""
        sub = await self._find(tenant, subscription_id)
        await self._guard.authorize(tenant, sub, REACTIVATE, proof)
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
        await self._emitter.emit(ev.UPDATED, sub)
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
        item = id_of(first_item(remote))
        if not item:
            raise CedrosError(ErrorCode.STRIPE_ERROR, "the Stripe subscription has no item")
        updated = await gw.update_subscription(sub.stripe_subscription_id, {
            "items": [{"id": item, "price": price}], "proration_behavior": behaviour})
        now = self._clock.now()
        start, end = subscription_period(updated)
        previous = sub.product_id
        sub = replace(sub, product_id=product.id, billing_period=term.period.value,
                      billing_interval=term.interval, updated_at=now,
                      status=stripe_status(updated.get("status"), sub.status),
                      current_period_start=start or sub.current_period_start,
                      current_period_end=end or sub.current_period_end,
                      metadata={**sub.metadata, "previous_product": previous,
                                "changed_at": now.isoformat()})
        await self._repo.update(sub)
        await self._emitter.emit(ev.UPDATED, sub)
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
