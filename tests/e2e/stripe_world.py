"""What the Stripe end-to-end tests share: a catalog in the store, the fake Stripe, the
real app built by `create_app` talking to it through the official SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from api.conftest import client_for, config_from
from support.fake_stripe import FakeStripe, running_fake_stripe, sign

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.core.models import Coupon, Product
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.storage.store import Store, memory_store

SECRET_KEY = "sk_test_cedros"
WEBHOOK_SECRET = "whsec_test_cedros"
SUCCESS_URL = "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/cart"

PRODUCTS = [
    Product(id="ebook", description="An ebook", fiat_amount=1000, fiat_currency="usd",
            stripe_price_id="price_ebook", crypto_amount=10_000_000, crypto_token="USDC"),
    Product(id="course", description="A course", fiat_amount=2500, fiat_currency="usd"),
    Product(id="remote", description="Priced at Stripe", stripe_price_id="price_remote"),
    Product(id="coins", description="Crypto only", crypto_amount=1_000_000,
            crypto_token="USDC"),
]


def coupons(now: datetime) -> list[Coupon]:
    return [
        Coupon(code="SAVE20", discount_type="percentage", discount_value=Decimal(20),
               applies_at="catalog"),
        Coupon(code="CRYPTO10", discount_type="percentage", discount_value=Decimal(10),
               payment_method="x402"),
        Coupon(code="OLD", discount_type="percentage", discount_value=Decimal(10),
               expires_at=now - timedelta(days=1)),
        Coupon(code="EBOOKHALF", discount_type="percentage", discount_value=Decimal(50),
               scope="specific", product_ids=["ebook"]),
        Coupon(code="FIVEOFF", discount_type="fixed", discount_value=Decimal(5),
               currency="USD", applies_at="checkout"),
    ]


@dataclass
class Notifications:
    """The notifier the app is given: what reached the merchant's side."""

    events: list[PaymentEvent] = field(default_factory=list)

    async def payment_succeeded(self, event: PaymentEvent) -> None:
        self.events.append(event)


@dataclass
class StripeWorld:
    fake: FakeStripe
    client: httpx.AsyncClient
    app: CedrosApp
    store: Store
    notes: Notifications

    async def session(self, body: Mapping[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post("/paywall/v1/stripe-session", json=body,
                                      headers=headers)

    async def deliver(self, payload: bytes, signature: str | None = None,
                      path: str = "/webhook/stripe") -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        headers["Stripe-Signature"] = sign(payload, WEBHOOK_SECRET) if signature is None \
            else signature
        return await self.client.post(path, content=payload, headers=headers)

    async def pay(self, session_id: str, *, event_id: str | None = None,
                  **kw: Any) -> tuple[bytes, httpx.Response]:
        """The customer pays; Stripe delivers `checkout.session.completed`."""
        payload = self.fake.event("checkout.session.completed",
                                  self.fake.complete(session_id, **kw), event_id=event_id)
        return payload, await self.deliver(payload)


@asynccontextmanager
async def stripe_world(env: Mapping[str, str] | None = None, *,
                       store: Store | None = None,
                       yaml_path: str | None = None) -> AsyncIterator[StripeWorld]:
    store = store or memory_store()
    now = datetime.now(UTC)
    for product in PRODUCTS:
        if await store.products.get(product.tenant_id, product.id) is None:
            await store.products.create(product)
    for coupon in coupons(now):
        if await store.coupons.get(coupon.tenant_id, coupon.code) is None:
            await store.coupons.create(coupon)
    async with running_fake_stripe(SECRET_KEY) as fake:
        fake.add_price("price_ebook", 1000)
        fake.add_price("price_remote", 1500)
        config = config_from({
            "CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite", "COUPON_SOURCE": "sqlite",
            "CEDROS_STRIPE_SECRET_KEY": SECRET_KEY,
            "CEDROS_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CEDROS_STRIPE_SUCCESS_URL": SUCCESS_URL, "CEDROS_STRIPE_CANCEL_URL": CANCEL_URL,
            "CEDROS_STRIPE_API_BASE": fake.url, **(env or {})}, yaml_path)
        notes = Notifications()
        app = create_app(config, store=store, notifier=notes)
        async with client_for(app) as client:
            yield StripeWorld(fake, client, app, store, notes)
