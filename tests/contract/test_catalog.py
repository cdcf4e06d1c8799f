"""Product and coupon repository contract (spec 23)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest
from contract.conftest import T0

from cedros_pay.core.models import Coupon, Product, SubscriptionConfig
from cedros_pay.storage.repos import AlreadyExists, NotFound
from cedros_pay.storage.store import Store


def product(pid: str = "p1", tenant: str = "default") -> Product:
    return Product(
        id=pid, tenant_id=tenant, description="Premium", fiat_amount=500, fiat_currency="usd",
        stripe_price_id=f"price_{pid}", crypto_amount=5_000_000, crypto_token="USDC",
        memo_template="{{resource}}", metadata={"tier": "gold"}, created_at=T0, updated_at=T0,
        subscription=SubscriptionConfig(billing_period="month", billing_interval=1,
                                         trial_days=7, allow_x402=True),
    )


def coupon(code: str = "SAVE10", tenant: str = "default", limit: int | None = None,
           value: str = "10") -> Coupon:
    return Coupon(
        code=code, tenant_id=tenant, discount_type="percentage",
        discount_value=Decimal(value), scope="specific", product_ids=["p1", "p2"],
        payment_method="x402", auto_apply=True, applies_at="checkout", usage_limit=limit,
        starts_at=T0, expires_at=None, metadata={"campaign": "x"}, created_at=T0,
        updated_at=T0,
    )


async def test_product_crud_and_soft_delete(store: Store) -> None:
    await store.products.create(product())
    assert await store.products.get("default", "p1") == product()
    with pytest.raises(AlreadyExists):
        await store.products.create(product())
    changed = replace(product(), crypto_amount=7)
    await store.products.update(changed)
    got = await store.products.get("default", "p1")
    assert got is not None and got.crypto_amount == 7
    assert await store.products.delete("default", "p1")
    assert await store.products.list("default") == []
    listed = await store.products.list("default", include_inactive=True)
    assert [p.active for p in listed] == [False]


async def test_update_of_missing_product_raises(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.products.update(product("nope"))


async def test_product_lookup_by_stripe_price(store: Store) -> None:
    await store.products.create(product("p1"))
    await store.products.create(product("p2"))
    got = await store.products.get_by_stripe_price_id("default", "price_p2")
    assert got is not None and got.id == "p2"


async def test_products_are_tenant_scoped_and_ids_may_repeat(store: Store) -> None:
    await store.products.create(product("p1", tenant="a"))
    await store.products.create(product("p1", tenant="b"))
    assert await store.products.get("c", "p1") is None
    assert await store.products.delete("b", "p1")
    a = await store.products.get("a", "p1")
    assert a is not None and a.active


async def test_coupon_round_trips_with_exact_decimal(store: Store) -> None:
    await store.coupons.create(coupon(value="0.1"))
    got = await store.coupons.get("default", "SAVE10")
    assert got == coupon(value="0.1")
    assert got is not None and got.discount_value == Decimal("0.1")


async def test_coupon_usage_limit_holds_under_concurrency(store: Store) -> None:
    await store.coupons.create(coupon(limit=5))
    results = await asyncio.gather(*(store.coupons.increment_usage("default", "SAVE10")
                                     for _ in range(20)))
    assert results.count(True) == 5
    got = await store.coupons.get("default", "SAVE10")
    assert got is not None and got.usage_count == 5


async def test_coupon_soft_delete_update_and_tenants(store: Store) -> None:
    await store.coupons.create(coupon(tenant="a"))
    assert await store.coupons.get("b", "SAVE10") is None
    assert not await store.coupons.increment_usage("b", "SAVE10")
    changed = replace(coupon(tenant="a"), discount_value=Decimal("25"))
    await store.coupons.update(changed)
    assert await store.coupons.delete("a", "SAVE10")
    assert await store.coupons.list("a") == []
    [gone] = await store.coupons.list("a", include_inactive=True)
    assert gone.discount_value == Decimal("25") and not gone.active
    with pytest.raises(NotFound):
        await store.coupons.update(coupon("MISSING"))


async def test_coupon_update_never_rewinds_the_usage_count(store: Store) -> None:
    await store.coupons.create(coupon(limit=10))
    stale = await store.coupons.get("default", "SAVE10")
    assert stale is not None
    await store.coupons.increment_usage("default", "SAVE10")
    await store.coupons.increment_usage("default", "SAVE10")
    # an update based on a read from before the redemptions
    await store.coupons.update(replace(stale, discount_value=Decimal("15")))
    got = await store.coupons.get("default", "SAVE10")
    assert got is not None
    assert (got.usage_count, got.discount_value) == (2, Decimal("15"))
