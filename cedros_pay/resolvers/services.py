"""The services an adapter can reach: built once by the composition root (`bootstrap/`),
read by REST and GraphQL. Adapters get resolvers and the plain values they render, never
the configuration or the store."""

from __future__ import annotations

from dataclasses import dataclass, field

from cedros_pay.core.clock import Clock
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.carts import Carts
from cedros_pay.resolvers.catalog import Catalog
from cedros_pay.resolvers.checkout import Checkout
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.events import PaymentEventHub
from cedros_pay.resolvers.gasless import Gasless
from cedros_pay.resolvers.health import Health
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.payments import Payments
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.refunds import Refunds
from cedros_pay.resolvers.subscriptions import Subscriptions
from cedros_pay.resolvers.webhook_admin import WebhookAdmin


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the discovery documents (spec 02) and the OpenAPI page say about this server."""

    version: str = "0.0.0"
    route_prefix: str = ""
    features: tuple[str, ...] = ()  # "stripe", "x402", "gasless", "subscriptions"
    network: str = ""
    payment_address: str = ""
    token_mint: str = ""
    tenant_tokens: bool = False  # tenancy.jwt_secret set: any route may answer 401


@dataclass(slots=True, kw_only=True)
class Services:
    clock: Clock
    health: Health
    pricing: Pricing
    catalog: Catalog
    coupons: CouponChecker
    quotes: Quotes
    carts: Carts
    payments: Payments
    checkout: Checkout
    payment_events: PaymentEventHub
    nonces: Nonces
    admin_auth: AdminAuth
    gasless: Gasless
    server: ServerInfo = field(default_factory=ServerInfo)
    webhook_admin: WebhookAdmin | None = None  # set with the delivery worker
    subscriptions: Subscriptions | None = None  # subscriptions.enabled
    refunds: Refunds | None = None
