"""TTL caches over the catalog: expiry, write-through invalidation, tenants, stampedes."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.storage.catalog import CachedCoupons, CachedProducts, TtlCache
from cedros_pay.storage.memory.catalog import MemoryCoupons, MemoryProducts

TTL = timedelta(minutes=5)


class CountingProducts(MemoryProducts):
    """Counts reads; a closed `gate` holds every read until it opens (a slow database)."""

    def __init__(self, products: list[Product] | None = None) -> None:
        super().__init__(products)
        self.calls: Counter[str] = Counter()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def _read(self, name: str) -> None:
        self.calls[name] += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail

    async def get(self, tenant: str, product_id: str) -> Product | None:
        await self._read("get")
        return await super().get(tenant, product_id)

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        await self._read("price")
        return await super().get_by_stripe_price_id(tenant, price_id)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        await self._read("list")
        return await super().list(tenant, include_inactive)


class CountingCoupons(MemoryCoupons):
    def __init__(self, coupons: list[Coupon] | None = None) -> None:
        super().__init__(coupons)
        self.calls: Counter[str] = Counter()

    async def get(self, tenant: str, code: str) -> Coupon | None:
        self.calls["get"] += 1
        return await super().get(tenant, code)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        self.calls["list"] += 1
        return await super().list(tenant, include_inactive)


def product(pid: str = "p1", tenant: str = "default", amount: int = 100) -> Product:
    return Product(id=pid, tenant_id=tenant, crypto_amount=amount, stripe_price_id=f"price_{pid}",
                   metadata={"k": "v"})


def coupon(code: str = "C", tenant: str = "default", limit: int | None = None) -> Coupon:
    return Coupon(code=code, tenant_id=tenant, discount_type="percentage",
                  discount_value=Decimal(10), usage_limit=limit, product_ids=["p1"])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, tzinfo=UTC))


def cached(clock: ManualClock, *products: Product,
           ttl: timedelta = TTL) -> tuple[CachedProducts, CountingProducts]:
    inner = CountingProducts(list(products))
    return CachedProducts(inner, ttl, clock), inner


# --- TTL ---------------------------------------------------------------------------


async def test_reads_are_served_from_cache_until_the_ttl_passes(clock: ManualClock) -> None:
    repo, inner = cached(clock, product())
    for _ in range(3):
        await repo.get("default", "p1")
        await repo.list("default")
        await repo.get_by_stripe_price_id("default", "price_p1")
    assert inner.calls == {"get": 1, "list": 1, "price": 1}

    clock.advance(TTL - timedelta(seconds=1))
    await repo.get("default", "p1")
    assert inner.calls["get"] == 1
    clock.advance(timedelta(seconds=1))  # exactly TTL after the load: expired
    await repo.get("default", "p1")
    assert inner.calls["get"] == 2


async def test_changes_behind_the_cache_show_after_the_ttl(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(amount=100))
    await repo.get("default", "p1")
    await inner.update(product(amount=200))  # another instance, or SQL by hand
    got = await repo.get("default", "p1")
    assert got is not None and got.crypto_amount == 100  # stale within the TTL (spec 23)
    clock.advance(TTL)
    got = await repo.get("default", "p1")
    assert got is not None and got.crypto_amount == 200


async def test_list_variants_are_cached_separately(clock: ManualClock) -> None:
    gone = replace(product("p2"), active=False)
    repo, inner = cached(clock, product(), gone)
    assert [p.id for p in await repo.list("default")] == ["p1"]
    assert [p.id for p in await repo.list("default", include_inactive=True)] == ["p1", "p2"]
    assert inner.calls["list"] == 2


async def test_misses_are_cached_until_a_create(clock: ManualClock) -> None:
    repo, inner = cached(clock)
    assert await repo.get("default", "p1") is None
    assert await repo.get("default", "p1") is None
    assert inner.calls["get"] == 1
    await repo.create(product())
    assert await repo.get("default", "p1") is not None


async def test_zero_ttl_disables_caching(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(), ttl=timedelta(0))
    for _ in range(3):
        await repo.get("default", "p1")
        await repo.list("default")
    assert inner.calls == {"get": 3, "list": 3}


# --- write-through invalidation ----------------------------------------------------


async def test_writes_through_the_cache_are_visible_at_once(clock: ManualClock) -> None:
    repo, _ = cached(clock, product(amount=100))
    await repo.get("default", "p1")
    await repo.list("default")

    await repo.update(product(amount=300))
    got = await repo.get("default", "p1")
    assert got is not None and got.crypto_amount == 300
    assert [p.crypto_amount for p in await repo.list("default")] == [300]

    await repo.create(product("p2"))
    assert [p.id for p in await repo.list("default")] == ["p1", "p2"]
    found = await repo.get_by_stripe_price_id("default", "price_p2")
    assert found is not None and found.id == "p2"

    assert await repo.delete("default", "p1")
    assert [p.id for p in await repo.list("default")] == ["p2"]
    got = await repo.get("default", "p1")
    assert got is not None and not got.active


async def test_a_failed_write_still_invalidates(clock: ManualClock) -> None:
    repo, inner = cached(clock)
    await repo.get("default", "p9")
    with pytest.raises(Exception, match="not found"):
        await repo.update(product("p9"))
    await repo.get("default", "p9")
    assert inner.calls["get"] == 2


async def test_invalidate_one_tenant_or_all(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(tenant="a"), product(tenant="b"))
    await repo.get("a", "p1")
    await repo.get("b", "p1")
    repo.invalidate("a")
    await repo.get("a", "p1")
    await repo.get("b", "p1")
    assert inner.calls["get"] == 3
    repo.invalidate()
    await repo.get("a", "p1")
    await repo.get("b", "p1")
    assert inner.calls["get"] == 5


# --- tenants -----------------------------------------------------------------------


async def test_tenants_are_cached_apart(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(tenant="a", amount=1), product(tenant="b", amount=2))
    a, b = await repo.get("a", "p1"), await repo.get("b", "p1")
    assert a is not None and b is not None
    assert (a.tenant_id, a.crypto_amount, b.tenant_id, b.crypto_amount) == ("a", 1, "b", 2)
    assert await repo.get("c", "p1") is None
    assert inner.calls["get"] == 3


async def test_a_write_invalidates_only_its_tenant(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(tenant="a"), product(tenant="b"))
    await repo.list("a")
    await repo.list("b")
    await repo.create(product("p2", tenant="a"))
    assert [p.id for p in await repo.list("a")] == ["p1", "p2"]
    assert [p.id for p in await repo.list("b")] == ["p1"]
    assert inner.calls["list"] == 3  # b still cached


# --- shared records ----------------------------------------------------------------


async def test_callers_share_frozen_records_but_own_their_lists(clock: ManualClock) -> None:
    repo, _ = cached(clock, product())
    first = await repo.get("default", "p1")
    assert first is not None
    with pytest.raises(FrozenInstanceError):
        first.crypto_amount = 1  # type: ignore[misc]
    page = await repo.list("default")
    page.append(product("intruder"))
    page.clear()
    assert [p.id for p in await repo.list("default")] == ["p1"]
    assert await repo.get("default", "p1") is first  # no copy per read


# --- no stampede -------------------------------------------------------------------


async def test_concurrent_misses_share_one_load(clock: ManualClock) -> None:
    repo, inner = cached(clock, product())
    inner.gate.clear()
    readers = [asyncio.create_task(repo.get("default", "p1")) for _ in range(20)]
    lists = [asyncio.create_task(repo.list("default")) for _ in range(5)]
    await asyncio.sleep(0)
    inner.gate.set()
    results = await asyncio.gather(*readers)
    await asyncio.gather(*lists)
    assert inner.calls == {"get": 1, "list": 1}
    assert all(r == product() for r in results)
    assert len({id(r) for r in results}) == 1  # one shared, frozen record
    await repo.get("default", "p1")
    assert inner.calls["get"] == 1


async def test_expiry_under_load_reloads_once(clock: ManualClock) -> None:
    repo, inner = cached(clock, product())
    await repo.get("default", "p1")
    clock.advance(TTL)
    inner.gate.clear()
    readers = [asyncio.create_task(repo.get("default", "p1")) for _ in range(10)]
    await asyncio.sleep(0)
    inner.gate.set()
    await asyncio.gather(*readers)
    assert inner.calls["get"] == 2


async def test_different_keys_load_separately(clock: ManualClock) -> None:
    repo, inner = cached(clock, product("p1"), product("p2"))
    got = await asyncio.gather(repo.get("default", "p1"), repo.get("default", "p2"),
                               repo.get("other", "p1"))
    assert [g.id if g else None for g in got] == ["p1", "p2", None]
    assert inner.calls["get"] == 3


async def test_a_cancelled_caller_does_not_cancel_the_shared_load(clock: ManualClock) -> None:
    repo, inner = cached(clock, product())
    inner.gate.clear()
    first = asyncio.create_task(repo.get("default", "p1"))
    await asyncio.sleep(0)
    second = asyncio.create_task(repo.get("default", "p1"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    inner.gate.set()
    assert await second == product()
    assert first.cancelled()
    assert inner.calls["get"] == 1
    await repo.get("default", "p1")
    assert inner.calls["get"] == 1  # the load finished and was cached


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(clock: ManualClock) -> None:
    repo, inner = cached(clock, product())
    inner.gate.clear()
    inner.fail = RuntimeError("database down")
    readers = [asyncio.create_task(repo.get("default", "p1")) for _ in range(3)]
    await asyncio.sleep(0)
    inner.gate.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert inner.calls["get"] == 1
    inner.fail = None
    assert await repo.get("default", "p1") == product()
    assert inner.calls["get"] == 2


async def test_a_load_overtaken_by_a_write_is_not_cached(clock: ManualClock) -> None:
    repo, inner = cached(clock, product(amount=100))
    inner.gate.clear()
    reader = asyncio.create_task(repo.get("default", "p1"))
    await asyncio.sleep(0)  # the read is in flight
    await repo.update(product(amount=500))
    inner.gate.set()
    await reader  # may be either value: it started before the write finished
    got = await repo.get("default", "p1")
    assert got is not None and got.crypto_amount == 500
    assert inner.calls["get"] == 2


# --- coupons -----------------------------------------------------------------------


async def test_coupon_reads_are_cached_and_usage_invalidates(clock: ManualClock) -> None:
    inner = CountingCoupons([coupon(limit=2)])
    repo = CachedCoupons(inner, timedelta(minutes=1), clock)
    await repo.get("default", "C")
    await repo.list("default")
    await repo.get("default", "C")
    assert inner.calls == {"get": 1, "list": 1}

    assert await repo.increment_usage("default", "C")
    got = await repo.get("default", "C")
    assert got is not None and got.usage_count == 1
    assert [c.usage_count for c in await repo.list("default")] == [1]
    assert await repo.increment_usage("default", "C")
    assert not await repo.increment_usage("default", "C")  # the limit is the source's check
    got = await repo.get("default", "C")
    assert got is not None and got.usage_count == 2


async def test_coupon_writes_invalidate_their_tenant(clock: ManualClock) -> None:
    inner = CountingCoupons([coupon(tenant="a"), coupon(tenant="b")])
    repo = CachedCoupons(inner, timedelta(minutes=1), clock)
    await repo.list("a")
    await repo.list("b")
    await repo.create(coupon("D", tenant="a"))
    changed = replace(coupon(tenant="a"), discount_value=Decimal(20))
    await repo.update(changed)
    assert [c.code for c in await repo.list("a")] == ["C", "D"]
    got = await repo.get("a", "C")
    assert got is not None and got.discount_value == Decimal(20)
    assert await repo.delete("a", "D")
    assert [c.code for c in await repo.list("a")] == ["C"]
    await repo.list("b")
    assert inner.calls["list"] == 4  # a three times, b once


async def test_coupon_cache_expires(clock: ManualClock) -> None:
    inner = CountingCoupons([coupon()])
    repo = CachedCoupons(inner, timedelta(minutes=1), clock)
    await repo.get("default", "C")
    clock.advance(timedelta(seconds=59))
    await repo.get("default", "C")
    clock.advance(timedelta(seconds=1))
    await repo.get("default", "C")
    assert inner.calls["get"] == 2


async def test_coupon_records_are_frozen(clock: ManualClock) -> None:
    repo = CachedCoupons(CountingCoupons([coupon()]), timedelta(minutes=1), clock)
    got = await repo.get("default", "C")
    assert got is not None
    with pytest.raises(FrozenInstanceError):
        got.usage_count = 99  # type: ignore[misc]
    again = await repo.get("default", "C")
    assert again is not None and again.usage_count == 0 and again.product_ids == ["p1"]


# --- the bound ---------------------------------------------------------------------


async def test_entries_are_bounded(clock: ManualClock) -> None:
    cache: TtlCache[int] = TtlCache(TTL, clock, max_entries=3)

    async def value(n: int) -> int:
        return n

    for n in range(3):
        await cache.get("old", n, partial(value, n))
    clock.advance(TTL)  # all three expire
    await cache.get("new", "x", lambda: value(9))
    assert len(cache) == 1  # expired entries were swept, not the fresh one
    for n in range(5):
        await cache.get("t", n, partial(value, n))
    assert len(cache) == 3
    assert await cache.get("t", 4, lambda: value(-1)) == 4  # the newest stayed
