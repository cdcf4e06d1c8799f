"""Composition of card checkout: configuration values -> StripeClient -> resolvers.

The only place that knows the concrete Stripe client; `build_checkout` takes values, not
the config or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cedros_pay.core.clock import Clock
from cedros_pay.integrations.circuit_breaker import DEFAULTS, STRIPE_API, CircuitBreaker
from cedros_pay.integrations.stripe.client import DEFAULT_API_BASE, StripeClient
from cedros_pay.resolvers.checkout import Checkout, Redirects
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.events import Notifier
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.stripe_events import Handler, StripeEvents
from cedros_pay.rest.middleware.state.memory_responses import MemoryIdempotencyStore
from cedros_pay.rest.middleware.state.responses import CachedResponse, IdempotencyStore
from cedros_pay.storage.repos import CouponRepo, PaymentRepo, ProductRepo, StripeSessionRepo

MAX_NETWORK_RETRIES = 2
_SEEN = b'{"received":true}'


class SeenInIdempotencyStore:
    """Processed Stripe event ids kept in the idempotency store (memory or Redis), so
    every instance that shares it sees them."""

    def __init__(self, store: IdempotencyStore) -> None:
        self._store = store

    async def seen(self, key: str) -> bool:
        return await self._store.get(key) is not None

    async def claim(self, key: str, lease: float) -> str | None:
        return await self._store.claim(key, lease)

    async def remember(self, key: str, token: str, ttl: float) -> None:
        await self._store.complete(key, token, CachedResponse(200, (), _SEEN), ttl)

    async def release(self, key: str, token: str) -> None:
        await self._store.release(key, token)


@dataclass(frozen=True, slots=True)
class StripeSettings:
    """The `stripe.*` values checkout uses (spec 09, plus `api_base`)."""

    secret_key: str = ""
    webhook_secret: str = ""
    success_url: str = ""
    cancel_url: str = ""
    tax_rate_id: str = ""
    api_base: str = DEFAULT_API_BASE


def attempt_timeout(request_timeout: float, retries: int = MAX_NETWORK_RETRIES) -> float:
    """Per-attempt SDK timeout: every attempt plus the SDK's backoff (0.5 s, 1 s, ...)
    fits within the route's deadline, so a slow Stripe is a `stripe_error`, not a 503."""
    return max(0.5, min(30.0, request_timeout / (2 * (retries + 1))))


def stripe_client(settings: StripeSettings, *, request_timeout: float,
                  breaker: CircuitBreaker | None = None) -> StripeClient | None:
    """The one Stripe client (checkout and card refunds); None without a secret key."""
    if not settings.secret_key:
        return None
    return StripeClient(api_key=settings.secret_key,
                        breaker=breaker or CircuitBreaker(STRIPE_API, DEFAULTS[STRIPE_API]),
                        api_base=settings.api_base, timeout=attempt_timeout(request_timeout),
                        max_retries=MAX_NETWORK_RETRIES)


def build_checkout(settings: StripeSettings, *, quotes: Quotes, pricing: Pricing,
                   coupons: CouponRepo, products: ProductRepo, sessions: StripeSessionRepo,
                   payments: PaymentRepo, notifier: Notifier, clock: Clock,
                   request_timeout: float, breaker: CircuitBreaker | None = None,
                   seen_events: IdempotencyStore | None = None,
                   client: StripeClient | None = None,
                   extra: Mapping[str, Handler] | None = None) -> Checkout:
    """Card checkout; without a secret key sessions are refused (webhooks still verify
    against the webhook secret, if one is set). `client`: one built by `stripe_client`
    (shared with card refunds; Checkout closes it); `extra`: more webhook handlers."""
    if client is None:
        client = stripe_client(settings, request_timeout=request_timeout, breaker=breaker)
    events = StripeEvents(extra=extra,
        verifier=StripeClient, webhook_secret=settings.webhook_secret,
        seen=SeenInIdempotencyStore(seen_events or MemoryIdempotencyStore(10_000)),
        payments=payments,
        sessions=sessions, coupons=coupons, notifier=notifier, clock=clock)
    return Checkout(
        gateway=client, events=events, quotes=quotes, pricing=pricing,
        coupon_checker=CouponChecker(coupons, clock), coupons=coupons, products=products,
        sessions=sessions, payments=payments, clock=clock,
        redirects=Redirects(success_url=settings.success_url, cancel_url=settings.cancel_url,
                            tax_rate_id=settings.tax_rate_id))
