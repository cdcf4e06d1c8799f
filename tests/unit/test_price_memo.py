"""Memoised product prices: a hit only when nothing the price depends on has changed.

`Pricing.product_prices` keeps the last (fiat, crypto) pair per product and coupon code;
every test here changes one input (time across a coupon's start or expiry, a redemption,
an edit, another code) and checks the memo answers exactly what a fresh computation does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import RoundingMode
from cedros_pay.resolvers import pricing as pricing_module
from cedros_pay.resolvers.pricing import Priced, Pricing, validity_window
from cedros_pay.storage.catalog import CachedCoupons
from cedros_pay.storage.store import Store, memory_store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EBOOK = Product(id="ebook", fiat_amount=1000, fiat_currency="usd",
                crypto_amount=10_000_000, crypto_token="USDC")


def pct(code: str, value: str, **kw: Any) -> Coupon:
    return Coupon(code=code, discount_type="percentage", discount_value=Decimal(value), **kw)


async def setup(*coupons: Coupon) -> tuple[Pricing, Store, ManualClock]:
    store = memory_store()
    for c in coupons:
        await store.coupons.create(c)
    clock = ManualClock(NOW)
    return Pricing(store.coupons, clock, RoundingMode.STANDARD), store, clock


async def fresh(pricing: Pricing, product: Product, code: str | None) -> tuple[int, int]:
    """Effective (fiat, crypto) atomic amounts computed without the memo."""
    fiat = await pricing.fiat_price("default", product, code)
    crypto = await pricing.crypto_price("default", product, code)
    assert fiat is not None and crypto is not None
    return fiat.effective.atomic, crypto.effective.atomic


async def memoised(pricing: Pricing, product: Product,
                   code: str | None) -> tuple[Priced, Priced]:
    fiat, crypto = await pricing.product_prices("default", product, code)
    assert fiat is not None and crypto is not None
    return fiat, crypto


def amounts(pair: tuple[Priced, Priced]) -> tuple[int, int]:
    return pair[0].effective.atomic, pair[1].effective.atomic


async def test_repeated_quotes_reuse_the_computed_prices() -> None:
    pricing, _, _ = await setup(pct("AUTO10", "10", auto_apply=True))
    first = await memoised(pricing, EBOOK, None)
    second = await memoised(pricing, EBOOK, None)
    assert second[0] is first[0] and second[1] is first[1]
    assert amounts(second) == await fresh(pricing, EBOOK, None) == (900, 9_000_000)


async def test_an_auto_coupon_expiring_ends_the_discount_at_its_expiry() -> None:
    pricing, _, clock = await setup(pct("AUTO10", "10", auto_apply=True, expires_at=NOW + HOUR))
    assert amounts(await memoised(pricing, EBOOK, None)) == (900, 9_000_000)
    clock.advance(HOUR - timedelta(microseconds=1))
    assert amounts(await memoised(pricing, EBOOK, None)) == (900, 9_000_000)
    clock.advance(timedelta(microseconds=1))  # now == expires_at: expired (spec 17)
    assert amounts(await memoised(pricing, EBOOK, None)) == (1000, 10_000_000)
    assert await fresh(pricing, EBOOK, None) == (1000, 10_000_000)


async def test_a_manual_coupon_starting_later_applies_from_its_start() -> None:
    pricing, _, clock = await setup(pct("LATER", "50", starts_at=NOW + HOUR))
    assert amounts(await memoised(pricing, EBOOK, "LATER")) == (1000, 10_000_000)
    clock.advance(HOUR)
    assert amounts(await memoised(pricing, EBOOK, "LATER")) == (500, 5_000_000)


async def test_a_clock_set_back_before_a_start_is_priced_again() -> None:
    pricing, _, clock = await setup(pct("LATER", "50", auto_apply=True, starts_at=NOW))
    assert amounts(await memoised(pricing, EBOOK, None)) == (500, 5_000_000)
    clock.set(NOW - HOUR)
    assert amounts(await memoised(pricing, EBOOK, None)) == (1000, 10_000_000)


async def test_reaching_the_usage_limit_ends_the_discount() -> None:
    pricing, store, _ = await setup(pct("ONCE", "20", usage_limit=1))
    assert amounts(await memoised(pricing, EBOOK, "ONCE")) == (800, 8_000_000)
    assert await store.coupons.increment_usage("default", "ONCE")
    assert amounts(await memoised(pricing, EBOOK, "ONCE")) == (1000, 10_000_000)


async def test_a_redemption_through_the_cache_shows_on_the_next_quote() -> None:
    store = memory_store()
    await store.coupons.create(pct("AUTO", "20", auto_apply=True, usage_limit=1))
    clock = ManualClock(NOW)
    coupons = CachedCoupons(store.coupons, timedelta(minutes=1), clock)
    pricing = Pricing(coupons, clock, RoundingMode.STANDARD)
    assert amounts(await memoised(pricing, EBOOK, None)) == (800, 8_000_000)
    assert await coupons.increment_usage("default", "AUTO")
    assert amounts(await memoised(pricing, EBOOK, None)) == (1000, 10_000_000)


async def test_an_edited_coupon_or_product_is_priced_again() -> None:
    pricing, store, _ = await setup(pct("AUTO", "10", auto_apply=True))
    assert amounts(await memoised(pricing, EBOOK, None)) == (900, 9_000_000)
    await store.coupons.update(pct("AUTO", "30", auto_apply=True))
    assert amounts(await memoised(pricing, EBOOK, None)) == (700, 7_000_000)
    dearer = replace(EBOOK, fiat_amount=2000, crypto_amount=20_000_000)
    assert amounts(await memoised(pricing, dearer, None)) == (1400, 14_000_000)
    await store.coupons.delete("default", "AUTO")
    assert amounts(await memoised(pricing, dearer, None)) == (2000, 20_000_000)


async def test_each_code_has_its_own_entry() -> None:
    pricing, _, _ = await setup(pct("TEN", "10"), pct("HALF", "50"))
    assert amounts(await memoised(pricing, EBOOK, "TEN")) == (900, 9_000_000)
    assert amounts(await memoised(pricing, EBOOK, "HALF")) == (500, 5_000_000)
    assert amounts(await memoised(pricing, EBOOK, "NOPE")) == (1000, 10_000_000)
    assert amounts(await memoised(pricing, EBOOK, None)) == (1000, 10_000_000)
    assert amounts(await memoised(pricing, EBOOK, "TEN")) == (900, 9_000_000)


async def test_the_memo_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(pricing_module, "_MEMO_LIMIT", 3)
    pricing, _, _ = await setup(pct("TEN", "10"))
    for n in range(10):
        assert amounts(await memoised(pricing, EBOOK, f"CODE{n}")) == (1000, 10_000_000)
        assert len(pricing._memo) <= 3
    assert amounts(await memoised(pricing, EBOOK, "TEN")) == (900, 9_000_000)


def test_validity_window_is_the_span_between_the_nearest_edges() -> None:
    coupons = [pct("A", "1", starts_at=NOW - HOUR, expires_at=NOW + 3 * HOUR),
               pct("B", "1", starts_at=NOW + HOUR), pct("C", "1", expires_at=NOW)]
    assert validity_window(coupons, NOW) == (NOW, NOW + HOUR)
    since, until = validity_window([pct("D", "1")], NOW)
    assert since < NOW < until and until.year == 9999
