"""Catalog sources: YAML mapping, read-only writes, disabled coupons, source selection."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cedros_pay.config import Config, X402Config, load_config
from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product, SubscriptionConfig
from cedros_pay.storage.catalog import (
    CachedCoupons,
    CachedProducts,
    DisabledCoupons,
    ReadOnlySource,
    SeededCoupons,
    SeededProducts,
    UnsupportedSource,
    YamlCoupons,
    YamlProducts,
    catalog_repos,
    default_token_symbol,
    import_yaml_catalog,
)
from cedros_pay.storage.memory.catalog import MemoryCoupons, MemoryProducts
from cedros_pay.storage.repos import StorageError
from cedros_pay.storage.store import Store, memory_store

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "specs" / \
    "reference-config.example.yaml"
PAY_TO = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
DEVNET_USDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
CLOCK = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))

RESOURCES: dict[str, Any] = {
    "article": {
        "description": "Premium article", "fiat_amount_cents": 500, "fiat_currency": "USD",
        "stripe_price_id": "price_article", "crypto_atomic_amount": 5_000_000,
        "crypto_token": "usdt", "memo_template": "{{resource}}:{{nonce}}",
        "metadata": {"plan": "gold"},
    },
    "crypto-only": {"crypto_atomic_amount": 250_000},
    "card-only": {"fiat_amount_cents": 1000, "stripe_price_id": "price_card"},
    "monthly": {
        "fiat_amount_cents": 900, "crypto_atomic_amount": 9_000_000,
        "subscription": {"billing_period": "Month", "billing_interval": 3, "trial_days": 7,
                         "stripe_price_id": "price_sub", "allow_x402": True,
                         "grace_period_hours": 12},
    },
    "retired": {"crypto_atomic_amount": 1, "active": False},
}
COUPONS: dict[str, Any] = {
    "TENTH": {"discount_type": "percentage", "discount_value": 0.1},
    "FIVE": {"discount_type": "fixed", "discount_value": 5, "currency": "usd",
             "scope": "specific", "product_ids": ["article"], "payment_method": "x402",
             "auto_apply": True, "applies_at": "catalog", "usage_limit": 3, "usage_count": 1,
             "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z",
             "metadata": {"campaign": "launch"}},
    "OFF": {"discount_type": "percentage", "discount_value": 50, "active": False},
}


def config(**sections: Any) -> Config:
    base: dict[str, Any] = {
        "x402": {"payment_address": PAY_TO, "token_mint": DEVNET_USDC, "network": "devnet"},
        "paywall": {"resources": RESOURCES},
        "coupons": {"coupons": COUPONS},
    }
    for name, section in sections.items():
        base[name] = {**base.get(name, {}), **section}
    return Config.model_validate(base)


def sql_like_store() -> Store:
    """A store that reports a SQL backend; the unit tests only look at which repo is used."""
    return replace(memory_store(), backend="sqlite")


def yaml_repos() -> tuple[YamlProducts, YamlCoupons]:
    products, coupons = catalog_repos(config(), sql_like_store(), CLOCK)
    assert isinstance(products, YamlProducts) and isinstance(coupons, YamlCoupons)
    return products, coupons


# --- the reference example file ----------------------------------------------------


def reference_config(tmp_path: Path) -> Config:
    text = REFERENCE.read_text()
    assert text.count('"recipient-wallet"') == 1  # its only placeholder
    path = tmp_path / "reference.yaml"
    path.write_text(text.replace('"recipient-wallet"', f'"{PAY_TO}"'))
    return load_config(path, environ={}, dotenv_path=None)


async def test_reference_example_catalog_comes_from_yaml(tmp_path: Path) -> None:
    cfg = reference_config(tmp_path)
    products, coupons = catalog_repos(cfg, sql_like_store(), CLOCK)
    assert isinstance(products, YamlProducts) and isinstance(coupons, YamlCoupons)

    listed = await products.list("default")
    assert [p.id for p in listed] == ["demo-content", "test-product-2"]
    assert listed[0] == Product(
        id="demo-content", description="Demo protected content", fiat_amount=100,
        fiat_currency="usd", stripe_price_id="price_123", crypto_amount=1_000_000,
        crypto_token="USDC", memo_template="{{resource}}:{{nonce}}",
        metadata={"plan": "demo"})
    assert (listed[1].fiat_amount, listed[1].crypto_amount) == (222, 2_220_000)
    assert listed[1].stripe_price_id == "price_1SQCuhR4HtkFbUJKDUQpCA6D"

    codes = await coupons.list("default")
    assert [c.code for c in codes] == ["SAVE20", "WELCOME5", "CRYPTO3", "DEMO50"]
    save20, welcome5, crypto3, demo50 = codes
    assert (save20.discount_type, save20.discount_value) == ("percentage", Decimal("20"))
    assert (save20.usage_limit, save20.applies_at, save20.auto_apply) == (100, "checkout", False)
    assert save20.starts_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert save20.expires_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert save20.metadata == {"campaign": "winter-sale"}
    assert (welcome5.discount_type, welcome5.discount_value) == ("fixed", Decimal("5"))
    assert welcome5.usage_limit is None and welcome5.currency == ""
    assert (crypto3.payment_method, crypto3.auto_apply, crypto3.applies_at) == (
        "x402", True, "catalog")
    assert (demo50.scope, demo50.product_ids) == ("specific", ["demo-content"])


# --- products from paywall.resources -----------------------------------------------


async def test_yaml_products_keep_file_order_and_hide_inactive() -> None:
    products, _ = yaml_repos()
    assert [p.id for p in await products.list("default")] == [
        "article", "crypto-only", "card-only", "monthly"]
    everything = await products.list("default", include_inactive=True)
    assert [p.id for p in everything][-1] == "retired"
    retired = await products.get("default", "retired")
    assert retired is not None and not retired.active  # get returns it; callers decide


async def test_yaml_product_fields_map_to_the_domain() -> None:
    products, _ = yaml_repos()
    assert await products.get("default", "article") == Product(
        id="article", description="Premium article", fiat_amount=500, fiat_currency="usd",
        stripe_price_id="price_article", crypto_amount=5_000_000, crypto_token="USDT",
        memo_template="{{resource}}:{{nonce}}", metadata={"plan": "gold"})


async def test_zero_amounts_mean_no_price_on_that_rail() -> None:
    products, _ = yaml_repos()
    crypto_only = await products.get("default", "crypto-only")
    card_only = await products.get("default", "card-only")
    assert crypto_only is not None and card_only is not None
    assert (crypto_only.fiat_amount, crypto_only.crypto_amount) == (None, 250_000)
    assert (card_only.fiat_amount, card_only.crypto_amount) == (1000, None)


async def test_missing_crypto_token_is_the_configured_mints_symbol() -> None:
    products, _ = yaml_repos()
    crypto_only = await products.get("default", "crypto-only")
    assert crypto_only is not None and crypto_only.crypto_token == "USDC"  # devnet USDC


def test_default_token_falls_back_to_first_allowed_token_for_unknown_mint() -> None:
    assert default_token_symbol(X402Config(token_mint=USDC)) == "USDC"
    assert default_token_symbol(X402Config(token_mint="", allowed_tokens=("PYUSD",))) == "PYUSD"
    assert default_token_symbol(X402Config(token_mint="", allowed_tokens=())) == ""


async def test_yaml_subscription_maps_to_subscription_config() -> None:
    products, _ = yaml_repos()
    monthly = await products.get("default", "monthly")
    assert monthly is not None and monthly.is_subscription
    assert monthly.subscription == SubscriptionConfig(
        billing_period="month", billing_interval=3, trial_days=7, stripe_price_id="price_sub",
        allow_x402=True, grace_period_hours=12)


async def test_yaml_catalog_is_served_to_every_tenant_stamped_with_it() -> None:
    products, coupons = yaml_repos()
    article = await products.get("acme", "article")
    assert article is not None and article.tenant_id == "acme"
    assert {p.tenant_id for p in await products.list("other")} == {"other"}
    tenth = await coupons.get("acme", "TENTH")
    assert tenth is not None and tenth.tenant_id == "acme"


async def test_yaml_lookup_by_stripe_price_id() -> None:
    products, _ = yaml_repos()
    found = await products.get_by_stripe_price_id("default", "price_card")
    assert found is not None and found.id == "card-only"
    assert await products.get_by_stripe_price_id("default", "price_none") is None
    assert await products.get_by_stripe_price_id("default", "") is None
    assert await products.get("default", "nope") is None


async def test_yaml_records_are_frozen_and_stamped_per_tenant() -> None:
    products, coupons = yaml_repos()
    article = await products.get("default", "article")
    assert article is not None
    with pytest.raises(FrozenInstanceError):
        article.crypto_amount = 1  # type: ignore[misc]
    assert await products.get("default", "article") is article  # built once per tenant
    other = await products.get("acme", "article")
    assert other is not None and other.tenant_id == "acme" and article.tenant_id == "default"
    assert other.crypto_amount == 5_000_000 and other.metadata == {"plan": "gold"}
    five = await coupons.get("acme", "FIVE")
    assert five is not None and five.tenant_id == "acme"
    assert five.product_ids == ["article"]


async def test_yaml_product_writes_are_refused_with_a_reason() -> None:
    products, _ = yaml_repos()
    for write in (products.create(Product(id="new")), products.update(Product(id="article")),
                  products.delete("default", "article")):
        with pytest.raises(ReadOnlySource, match=r"paywall\.resources") as info:
            await write
        assert isinstance(info.value, StorageError)
    article = await products.get("default", "article")
    assert article is not None and article.active


# --- coupons from coupons.coupons --------------------------------------------------


async def test_yaml_coupon_fields_map_to_the_domain() -> None:
    _, coupons = yaml_repos()
    assert [c.code for c in await coupons.list("default")] == ["TENTH", "FIVE"]
    assert [c.code for c in await coupons.list("default", include_inactive=True)] == [
        "TENTH", "FIVE", "OFF"]
    tenth = await coupons.get("default", "TENTH")
    assert tenth is not None
    assert tenth.discount_value == Decimal("0.1")  # exactly one tenth, not 0.1000000000000000055
    assert (tenth.scope, tenth.payment_method, tenth.applies_at) == ("all", "", "checkout")
    assert tenth.usage_limit is None
    assert await coupons.get("default", "FIVE") == Coupon(
        code="FIVE", discount_type="fixed", discount_value=Decimal("5"), currency="usd",
        scope="specific", product_ids=["article"], payment_method="x402", auto_apply=True,
        applies_at="catalog", usage_limit=3, usage_count=1,
        starts_at=datetime(2026, 1, 1, tzinfo=UTC), expires_at=datetime(2026, 2, 1, tzinfo=UTC),
        metadata={"campaign": "launch"})
    assert await coupons.get("default", "five") is None  # codes are exact


async def test_yaml_coupon_usage_counts_in_memory_up_to_the_limit() -> None:
    _, coupons = yaml_repos()
    # FIVE: limit 3, the file says 1 used already.
    listed = {c.code: c.usage_count for c in await coupons.list("default")}
    assert listed["FIVE"] == 1
    assert await coupons.increment_usage("default", "FIVE")
    listed = {c.code: c.usage_count for c in await coupons.list("default")}
    assert listed["FIVE"] == 2  # the listing shows the use at once
    assert await coupons.increment_usage("default", "FIVE")
    assert not await coupons.increment_usage("default", "FIVE")
    five = await coupons.get("default", "FIVE")
    assert five is not None and five.usage_count == 3
    assert not await coupons.increment_usage("default", "NOPE")


async def test_yaml_coupon_usage_is_counted_per_tenant() -> None:
    _, coupons = yaml_repos()
    assert await coupons.increment_usage("a", "TENTH")
    assert await coupons.increment_usage("a", "TENTH")
    a, b = await coupons.get("a", "TENTH"), await coupons.get("b", "TENTH")
    assert a is not None and b is not None
    assert (a.usage_count, b.usage_count) == (2, 0)


async def test_yaml_coupon_writes_are_refused() -> None:
    _, coupons = yaml_repos()
    tenth = Coupon(code="TENTH", discount_type="percentage", discount_value=Decimal(1))
    for write in (coupons.create(tenth), coupons.update(tenth), coupons.delete("default", "TENTH")):
        with pytest.raises(ReadOnlySource, match=r"coupons\.coupons"):
            await write


async def test_disabled_coupons_have_none_and_refuse_writes() -> None:
    _, coupons = catalog_repos(config(coupons={"coupon_source": "disabled"}),
                               sql_like_store(), CLOCK)
    assert isinstance(coupons, DisabledCoupons)
    assert await coupons.get("default", "TENTH") is None
    assert await coupons.list("default", include_inactive=True) == []
    assert not await coupons.increment_usage("default", "TENTH")
    c = Coupon(code="X", discount_type="percentage", discount_value=Decimal(1))
    for write in (coupons.create(c), coupons.update(c), coupons.delete("default", "X")):
        with pytest.raises(ReadOnlySource, match="disabled"):
            await write


# --- source selection --------------------------------------------------------------


def test_file_backend_selects_yaml_sources() -> None:
    products, coupons = catalog_repos(config(storage={"backend": "file"}),
                                      sql_like_store(), CLOCK)
    assert isinstance(products, YamlProducts) and isinstance(coupons, YamlCoupons)


def test_explicit_sqlite_sources_use_the_store_behind_caches() -> None:
    cfg = config(storage={"backend": "sqlite"}, paywall={"product_source": "sqlite"},
                 coupons={"coupon_source": "sqlite"})
    products, coupons = catalog_repos(cfg, sql_like_store(), CLOCK)
    assert isinstance(products, CachedProducts) and isinstance(coupons, CachedCoupons)


def test_postgres_backend_sources_follow_it() -> None:
    cfg = config(storage={"backend": "postgres", "postgres_url": "postgresql://db/cedros"})
    assert (cfg.paywall.product_source, cfg.coupons.coupon_source) == ("postgres", "postgres")
    store = replace(memory_store(), backend="postgres")
    products, coupons = catalog_repos(cfg, store, CLOCK)
    assert isinstance(products, CachedProducts) and isinstance(coupons, CachedCoupons)


def test_yaml_override_wins_over_a_database_backend() -> None:
    cfg = config(storage={"backend": "postgres", "postgres_url": "postgresql://db/cedros"},
                 paywall={"product_source": "yaml"}, coupons={"coupon_source": "yaml"})
    products, coupons = catalog_repos(cfg, replace(memory_store(), backend="postgres"), CLOCK)
    assert isinstance(products, YamlProducts) and isinstance(coupons, YamlCoupons)


def test_mongodb_sources_are_refused_clearly() -> None:
    cfg = config(storage={"backend": "mongodb", "mongodb_url": "mongodb://db",
                          "mongodb_database": "cedros"})
    with pytest.raises(UnsupportedSource, match=r"paywall\.product_source 'mongodb'"):
        catalog_repos(cfg, memory_store(), CLOCK)
    cfg = config(coupons={"coupon_source": "mongodb", "mongodb_url": "mongodb://db",
                          "mongodb_database": "cedros"})
    with pytest.raises(UnsupportedSource, match=r"coupons\.coupon_source 'mongodb'"):
        catalog_repos(cfg, sql_like_store(), CLOCK)


def test_database_source_must_be_the_storage_database() -> None:
    cfg = config(storage={"backend": "sqlite"},
                 paywall={"product_source": "postgres", "postgres_url": "postgresql://db/x"})
    with pytest.raises(UnsupportedSource, match=r"needs storage\.backend 'postgres'"):
        catalog_repos(cfg, sql_like_store(), CLOCK)


def test_separate_catalog_database_or_table_is_refused() -> None:
    storage = {"backend": "postgres", "postgres_url": "postgresql://db/main"}
    store = replace(memory_store(), backend="postgres")
    other_url = config(storage=storage, paywall={"postgres_url": "postgresql://db/other"})
    with pytest.raises(UnsupportedSource, match=r"paywall\.postgres_url differs") as info:
        catalog_repos(other_url, store, CLOCK)
    assert "db/other" not in str(info.value)  # URLs may carry passwords
    other_table = config(storage=storage, coupons={"postgres_table_name": "my_coupons"})
    with pytest.raises(UnsupportedSource, match=r"storage\.schema_mapping"):
        catalog_repos(other_table, store, CLOCK)
    mapped = config(storage={**storage, "schema_mapping": {"products": "shop_products"}})
    assert mapped.paywall.postgres_table_name == "shop_products"
    products, _ = catalog_repos(mapped, store, CLOCK)
    assert isinstance(products, CachedProducts)


async def test_cache_ttls_come_from_the_config() -> None:
    cfg = config(storage={"backend": "sqlite"},
                 paywall={"product_source": "sqlite", "product_cache_ttl": "0s"},
                 coupons={"coupon_source": "sqlite", "cache_ttl": "30s"})
    store = sql_like_store()
    products, coupons = catalog_repos(cfg, store, CLOCK)
    assert await products.list("default") == [] and await coupons.list("default") == []
    # Written behind the caches' backs: seen at once without a cache, not within 30s.
    await store.products.create(Product(id="p"))
    await store.coupons.create(Coupon(code="C", discount_type="fixed", discount_value=Decimal(1)))
    assert [p.id for p in await products.list("default")] == ["p"]
    assert await coupons.list("default") == []


# --- the memory backend: writable, seeded from YAML --------------------------------


async def test_memory_store_serves_yaml_entries_writably() -> None:
    store = memory_store()
    products, coupons = catalog_repos(config(storage={"backend": "memory"}), store, CLOCK)
    assert isinstance(products, SeededProducts) and isinstance(coupons, SeededCoupons)

    assert {p.id for p in await products.list("default")} == {
        "article", "crypto-only", "card-only", "monthly"}
    await products.create(Product(id="added", crypto_amount=7))
    assert await products.delete("default", "article")
    assert {p.id for p in await products.list("default")} == {
        "added", "crypto-only", "card-only", "monthly"}
    assert (await store.products.get("default", "added")) is not None  # the store's repo

    assert await coupons.increment_usage("default", "FIVE")
    five = await coupons.get("default", "FIVE")
    assert five is not None and five.usage_count == 2


async def test_memory_seed_is_per_tenant_and_happens_once() -> None:
    store = memory_store()
    products, _ = catalog_repos(config(storage={"backend": "memory"}), store, CLOCK)
    assert await products.delete("a", "article")
    assert await products.list("b") != []
    article_a, article_b = await products.get("a", "article"), await products.get("b", "article")
    assert article_a is not None and not article_a.active  # not re-seeded over the delete
    assert article_b is not None and article_b.active and article_b.tenant_id == "b"


async def test_memory_seed_keeps_entries_created_before_first_read() -> None:
    products = SeededProducts(MemoryProducts(), YamlProducts([Product(id="a", description="file")]))
    await products.create(Product(id="b"))
    assert [p.id for p in await products.list("default")] == ["a", "b"]
    inner = MemoryProducts([Product(id="a", description="api")])
    products = SeededProducts(inner, YamlProducts([Product(id="a", description="file")]))
    got = await products.get("default", "a")
    assert got is not None and got.description == "api"


# --- explicit import into a database source ----------------------------------------


async def test_import_yaml_catalog_adds_missing_entries_once() -> None:
    products, coupons = MemoryProducts([Product(id="article", tenant_id="t")]), MemoryCoupons()
    cfg = config()
    assert await import_yaml_catalog(cfg, products, coupons, "t") == (4, 3)
    assert await import_yaml_catalog(cfg, products, coupons, "t") == (0, 0)
    kept = await products.get("t", "article")
    assert kept is not None and kept.description == ""  # existing rows are not overwritten
    assert {p.id for p in await products.list("t", include_inactive=True)} == set(RESOURCES)
    assert await products.list("default") == []
