"""What a card checkout adds over Stripe itself, measured against the fake Stripe.

    python -m bench.stripe_checkout [-n 300]

Runs the fake Stripe of tests/support on 127.0.0.1 and, in the same process, (a) the bare
SDK call `StripeClient.create_checkout_session` against it, (b) POST /paywall/v1/stripe-session
and POST /paywall/v1/cart/checkout through the whole app (middleware chain, resolvers, memory
store; in-process ASGI, so no HTTP parsing on our side). The p50 difference is what Cedros
adds to a checkout; the Stripe calls per checkout are counted from the fake's request log.
Figures are ms on this machine at this moment: compare them within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.fake_stripe import running_fake_stripe

from cedros_pay.app import create_app
from cedros_pay.config import load_config
from cedros_pay.core.models import Coupon, Product
from cedros_pay.integrations.circuit_breaker import (
    DEFAULTS,
    STRIPE_API,
    CircuitBreaker,
)
from cedros_pay.integrations.stripe import CheckoutLine, CheckoutRequest, StripeClient
from cedros_pay.storage.store import memory_store

KEY = "sk_test_bench"


async def _paired(n: int, app_call: Callable[[], Awaitable[object]],
                  bare_call: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """p50 of the app call, of the bare SDK call(s) it makes, and of their difference,
    measured in interleaved pairs so that a busy machine slows both alike."""
    for _ in range(min(20, n)):  # warm-up: connections, memo caches
        await bare_call()
        await app_call()
    apps, bares, diffs = [], [], []
    for _ in range(n):
        started = time.perf_counter()
        await bare_call()
        middle = time.perf_counter()
        await app_call()
        ended = time.perf_counter()
        bares.append((middle - started) * 1000)
        apps.append((ended - middle) * 1000)
        diffs.append(apps[-1] - bares[-1])
    return statistics.median(apps), statistics.median(bares), statistics.median(diffs)


URLS = {"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/ok"}
META = {"resource_id": "bench", "tenant_id": "default"}


async def main(n: int) -> None:
    async with running_fake_stripe(KEY) as fake:
        fake.add_price("price_bench", 1000)
        sdk = StripeClient(api_key=KEY, api_base=fake.url,
                           breaker=CircuitBreaker(STRIPE_API, DEFAULTS[STRIPE_API]))
        store = memory_store()
        await store.products.create(Product(id="bench", description="Bench", fiat_amount=1000,
                                            fiat_currency="usd", stripe_price_id="price_bench"))
        await store.coupons.create(Coupon(code="OFF5", discount_type="fixed",
                                          discount_value=Decimal(5), currency="USD",
                                          applies_at="checkout"))
        no_limits = Path(tempfile.mkdtemp()) / "bench.yaml"
        no_limits.write_text("rate_limit:\n  per_ip: {enabled: false}\n"
                             "  global: {enabled: false}\n")
        config = load_config(str(no_limits), dotenv_path=None, environ={
            "CEDROS_X402_NETWORK": "devnet",
            "CEDROS_X402_PAYMENT_ADDRESS": "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ",
            "CEDROS_X402_TOKEN_MINT": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
            "CEDROS_X402_RPC_URL": "http://127.0.0.1:9/",
            "CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite", "COUPON_SOURCE": "sqlite",
            "CEDROS_STRIPE_SECRET_KEY": KEY, "CEDROS_STRIPE_API_BASE": fake.url,
            "CEDROS_STRIPE_SUCCESS_URL": URLS["success_url"]})
        price_line = CheckoutLine(quantity=1, price_id="price_bench")
        amount_line = CheckoutLine(quantity=1, amount_cents=500, currency="usd", name="Bench")

        async def bare_session(line: CheckoutLine = price_line, coupon: str = "") -> object:
            return await sdk.create_checkout_session(CheckoutRequest(
                lines=[line], metadata=META, coupon_id=coupon, **URLS))

        async def bare_coupon_cart() -> object:
            coupon = await sdk.create_coupon(amount_off=500, currency="usd", name="OFF5")
            return await bare_session(CheckoutLine(quantity=2, price_id="price_bench"), coupon)

        cases: list[tuple[str, str, object, Callable[[], Awaitable[object]]]] = [
            ("session (price id)", "/paywall/v1/stripe-session", {"resource": "bench"},
             bare_session),
            ("session (coupon)", "/paywall/v1/stripe-session",
             {"resource": "bench", "couponCode": "OFF5"}, lambda: bare_session(amount_line)),
            ("cart (2 lines)", "/paywall/v1/cart/checkout",
             {"items": [{"resource": "bench", "quantity": 2}, {"priceId": "price_bench"}]},
             bare_session),
            ("cart (coupon)", "/paywall/v1/cart/checkout",
             {"items": [{"resource": "bench", "quantity": 2}], "couponCode": "OFF5"},
             bare_coupon_cart),
        ]
        app = create_app(config, store=store)
        rows = []
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for name, path, body, bare in cases:
                    async def post(path: str = path, body: object = body) -> object:
                        resp = await client.post(path, json=body)
                        assert resp.status_code == 200, resp.text
                        return resp

                    before = len(fake.requests)
                    await post()
                    calls = fake.requests[before:]
                    kinds = [f"{c.method} {c.path}" for c in calls]
                    rows.append((name, *await _paired(n, post, bare), kinds))
        await sdk.aclose()
    for name, app_p50, bare_p50, added, kinds in rows:
        print(f"{name:20} app p50 {app_p50:6.2f} ms, its Stripe calls alone {bare_p50:6.2f} ms,"
              f" added p50 {added:5.2f} ms; {len(kinds)} call(s): {', '.join(kinds)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300)
    asyncio.run(main(parser.parse_args().n))
