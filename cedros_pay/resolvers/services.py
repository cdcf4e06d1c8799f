"""The services an adapter can reach: built once in `app.py`, read by REST and GraphQL."""

from __future__ import annotations

from dataclasses import dataclass, field

from cedros_pay.config import Config
from cedros_pay.core.clock import Clock
from cedros_pay.resolvers.admin_auth import AdminAuth
from cedros_pay.resolvers.carts import Carts
from cedros_pay.resolvers.catalog import Catalog
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.events import PaymentEventHub
from cedros_pay.resolvers.gasless import Gasless
from cedros_pay.resolvers.health import Health
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.payments import Payments
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.webhook_admin import WebhookAdmin
from cedros_pay.storage.store import Store


@dataclass(slots=True, kw_only=True)
class Services:
    config: Config
    clock: Clock
    store: Store
    health: Health
    pricing: Pricing
    catalog: Catalog
    coupons: CouponChecker
    quotes: Quotes
    carts: Carts
    payments: Payments
    payment_events: PaymentEventHub
    nonces: Nonces
    admin_auth: AdminAuth
    gasless: Gasless
    webhook_admin: WebhookAdmin | None = None  # set with the delivery worker (app.py)
    version: str = "0.0.0"
    features: list[str] = field(default_factory=list)
