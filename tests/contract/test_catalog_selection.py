"""Catalog source selection against real stores (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from contract.conftest import T0

from cedros_pay.config import Config
from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.storage.catalog import (
    CachedCoupons,
    CachedProducts,
    DisabledCoupons,
    ReadOnlySource,
    SeededProducts,
    YamlCoupons,
    YamlProducts,
    catalog_repos,
    import_yaml_catalog,
)
from cedros_pay.storage.store import Store

PAY_TO = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
RESOURCES: dict[str, Any] = {
    "zine": {"description": "Zine", "crypto_atomic_amount": 1_500_000, "fiat_amount_cents": 150,
             "stripe_price_id": "price_zine", "metadata": {"issue": "7"}},
    "album": {"description": "Album", "crypto_atomic_amount": 9_000_000,
              "subscription": {"billing_period": "month", "allow_x402": True}},
}
COUPONS: dict[str, Any] = {
    "TENTH": {"discount_type": "percentage", "discount_value": 0.1, "usage_limit": 3},
}


def settings(backend: str, location: str, **sources: str) -> Config:
    """A config whose storage section names the store under test.

    The memory store stands in for an injected store (as embedders and API tests pass one)
    under a config that names SQLite.
    """
    storage: dict[str, Any] = {"backend": "sqlite", "file_path": location}
    if backend == "postgres":
        storage = {"backend": "postgres", "postgres_url": location}
    db_source = "postgres" if backend == "postgres" else "sqlite"
    return Config.model_validate({
        "storage": storage,
        "x402": {"payment_address": PAY_TO, "token_mint": USDC},
        "paywall": {"resources": RESOURCES,
                    "product_source": sources.get("products", db_source)},
        "coupons": {"coupons": COUPONS, "coupon_source": sources.get("coupons", db_source)},
    })


def product(pid: str, amount: int = 1_000) -> Product:
    return Product(id=pid, description=pid, crypto_amount=amount, crypto_token="USDC",
                   created_at=T0, updated_at=T0)


def coupon(code: str, limit: int | None = None) -> Coupon:
    return Coupon(code=code, discount_type="fixed", discount_value=Decimal("1.5"),
                  usage_limit=limit, created_at=T0, updated_at=T0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def test_database_source_reads_the_store_through_the_cache(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    cfg = settings(*backend_target)
    products, coupons = catalog_repos(cfg, store, clock)
    assert isinstance(products, CachedProducts) and isinstance(coupons, CachedCoupons)
    assert await products.list("default") == []

    await store.products.create(product("db"))  # written by someone else
    assert await products.list("default") == []  # cached miss, within the TTL
    products.invalidate("default")
    assert [p.id for p in await products.list("default")] == ["db"]

    await store.products.update(product("db", amount=2_000))
    clock.advance(cfg.paywall.product_cache_ttl)  # 5m by default
    got = await products.get("default", "db")
    assert got is not None and got.crypto_amount == 2_000


async def test_writes_through_the_cache_reach_the_database_at_once(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    products, coupons = catalog_repos(settings(*backend_target), store, clock)
    assert await products.get("default", "new") is None
    await products.create(product("new"))
    assert await store.products.get("default", "new") == product("new")
    assert await products.get("default", "new") == product("new")

    await products.update(product("new", amount=5))
    got = await products.get("default", "new")
    assert got is not None and got.crypto_amount == 5
    assert await products.delete("default", "new")
    assert await products.list("default") == []

    await coupons.create(coupon("SAVE"))
    assert [c.code for c in await coupons.list("default")] == ["SAVE"]
    stored = await store.coupons.get("default", "SAVE")
    assert stored is not None and stored.discount_value == Decimal("1.5")


async def test_coupon_limit_holds_for_concurrent_uses_through_the_cache(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    _, coupons = catalog_repos(settings(*backend_target), store, clock)
    await coupons.create(coupon("LIMITED", limit=3))
    assert (await coupons.get("default", "LIMITED")) is not None  # now cached
    outcomes = await asyncio.gather(
        *(coupons.increment_usage("default", "LIMITED") for _ in range(8)))
    assert outcomes.count(True) == 3
    got = await coupons.get("default", "LIMITED")
    assert got is not None and got.usage_count == 3


async def test_tenants_stay_apart_through_the_cache(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    products, _ = catalog_repos(settings(*backend_target), store, clock)
    a = replace(product("p"), tenant_id="a")
    await products.create(a)
    assert await products.get("b", "p") is None
    assert [p.tenant_id for p in await products.list("a")] == ["a"]


async def test_yaml_source_ignores_the_store(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    await store.products.create(product("db-only"))
    cfg = settings(*backend_target, products="yaml", coupons="yaml")
    products, coupons = catalog_repos(cfg, store, clock)

    if store.backend == "memory":
        # The memory backend serves the file's entries from the store itself, writably.
        assert isinstance(products, SeededProducts)
        assert {p.id for p in await products.list("default")} == {"db-only", "zine", "album"}
        return

    assert isinstance(products, YamlProducts)
    assert [p.id for p in await products.list("default")] == ["zine", "album"]
    assert await products.get("default", "db-only") is None
    with pytest.raises(ReadOnlySource):
        await products.create(product("x"))
    assert [p.id for p in await store.products.list("default")] == ["db-only"]

    assert await coupons.increment_usage("default", "TENTH")  # counted in memory only
    assert await store.coupons.list("default") == []


async def test_disabled_coupons_ignore_the_store(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    await store.coupons.create(coupon("DB"))
    _, coupons = catalog_repos(settings(*backend_target, coupons="disabled"), store, clock)
    assert isinstance(coupons, DisabledCoupons)
    assert await coupons.get("default", "DB") is None
    assert not await coupons.increment_usage("default", "DB")
    assert not await coupons.release_usage("default", "DB")


async def test_imported_yaml_catalog_round_trips_through_the_database(
        store: Store, backend_target: tuple[str, str], clock: ManualClock) -> None:
    cfg = settings(*backend_target)
    assert await import_yaml_catalog(cfg, store.products, store.coupons, "default") == (2, 1)
    products, coupons = catalog_repos(cfg, store, clock)
    yaml_products, yaml_coupons = catalog_repos(
        settings(*backend_target, products="yaml", coupons="yaml"), store, clock)
    for pid in RESOURCES:
        assert await products.get("default", pid) == await yaml_products.get("default", pid)
    assert await coupons.get("default", "TENTH") == await yaml_coupons.get("default", "TENTH")
    tenth = await coupons.get("default", "TENTH")
    assert tenth is not None and tenth.discount_value == Decimal("0.1")


@pytest.mark.parametrize("source", ["yaml", "database"])
async def test_the_last_coupon_use_is_reserved_once_whatever_the_source(
        store: Store, backend_target: tuple[str, str], clock: ManualClock,
        source: str) -> None:
    """The reservation a payment takes before the chain, and its give-back on failure."""
    if source == "yaml":
        cfg = settings(*backend_target, coupons="yaml")
    else:
        cfg = settings(*backend_target)
        await import_yaml_catalog(cfg, store.products, store.coupons, "default")
    _, coupons = catalog_repos(cfg, store, clock)
    assert await coupons.get("default", "TENTH") is not None  # cached where there is a cache
    assert await coupons.increment_usage("default", "TENTH")
    assert await coupons.increment_usage("default", "TENTH")
    outcomes = await asyncio.gather(
        *(coupons.increment_usage("default", "TENTH") for _ in range(50)))
    assert outcomes.count(True) == 1  # TENTH allows three uses
    assert await coupons.release_usage("default", "TENTH")
    got = await coupons.get("default", "TENTH")
    assert got is not None and got.usage_count == 2
    assert await coupons.increment_usage("default", "TENTH")
    assert not await coupons.increment_usage("default", "TENTH")


async def test_yaml_coupons_give_back_only_uses_counted_here() -> None:
    coupons = YamlCoupons([replace(coupon("FILE"), usage_limit=2, usage_count=1)])
    assert await coupons.increment_usage("t", "FILE")
    assert not await coupons.increment_usage("t", "FILE")
    assert await coupons.release_usage("t", "FILE")
    assert not await coupons.release_usage("t", "FILE")  # the file's use stays counted
    got = await coupons.get("t", "FILE")
    assert got is not None and got.usage_count == 1
    assert [c.usage_count for c in await coupons.list("t")] == [1]
    assert not await coupons.release_usage("t", "MISSING")
