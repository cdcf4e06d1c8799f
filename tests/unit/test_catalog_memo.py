"""The catalog view is reused only while nothing it was computed from has changed.

`Catalog.list` keeps each tenant's last view with the product records, the auto-apply
coupons and the span in which no coupon starts or expires; each test changes one of them
and checks the listing prices what a fresh catalog (no memo) prices.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import RoundingMode
from cedros_pay.resolvers.catalog import Catalog, CatalogView
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.storage.store import Store, memory_store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EBOOK = Product(id="ebook", fiat_amount=1000, fiat_currency="usd",
                crypto_amount=10_000_000, crypto_token="USDC")
COURSE = Product(id="course", fiat_amount=5000, fiat_currency="usd",
                 crypto_amount=50_000_000, crypto_token="USDC")


def auto10(**kw: object) -> Coupon:
    return Coupon(code="AUTO10", discount_type="percentage", discount_value=Decimal("10"),
                  auto_apply=True, **kw)  # type: ignore[arg-type]


async def setup(*coupons: Coupon) -> tuple[Catalog, Store, ManualClock]:
    store = memory_store()
    for product in (EBOOK, COURSE):
        await store.products.create(product)
    for c in coupons:
        await store.coupons.create(c)
    clock = ManualClock(NOW)
    pricing = Pricing(store.coupons, clock, RoundingMode.STANDARD)
    return Catalog(store.products, store.coupons, pricing, clock), store, clock


def prices(view: CatalogView) -> dict[str, tuple[int | None, int | None]]:
    return {v.product.id: (v.fiat.effective.atomic if v.fiat else None,
                           v.crypto.effective.atomic if v.crypto else None)
            for v in view.products}


async def fresh(store: Store, clock: ManualClock) -> dict[str, tuple[int | None, int | None]]:
    pricing = Pricing(store.coupons, clock, RoundingMode.STANDARD)
    return prices(await Catalog(store.products, store.coupons, pricing, clock).list("default"))


async def test_an_unchanged_catalog_is_listed_from_the_same_view() -> None:
    catalog, store, clock = await setup(auto10())
    first = await catalog.list("default")
    assert await catalog.list("default") is first
    assert prices(first) == await fresh(store, clock) == {
        "ebook": (900, 9_000_000), "course": (4500, 45_000_000)}


async def test_a_coupon_expiring_changes_the_listing_at_its_expiry() -> None:
    catalog, store, clock = await setup(auto10(expires_at=NOW + HOUR))
    first = await catalog.list("default")
    clock.advance(HOUR - timedelta(microseconds=1))
    assert await catalog.list("default") is first
    clock.advance(timedelta(microseconds=1))
    after = await catalog.list("default")
    assert after is not first
    assert prices(after) == await fresh(store, clock) == {
        "ebook": (1000, 10_000_000), "course": (5000, 50_000_000)}
    clock.advance(-HOUR)  # a clock set back is outside the new view's span too
    assert prices(await catalog.list("default")) == prices(first)


async def test_a_product_edit_or_a_new_coupon_is_listed_at_once() -> None:
    catalog, store, clock = await setup()
    first = await catalog.list("default")
    await store.products.update(replace(EBOOK, fiat_amount=1200))
    edited = await catalog.list("default")
    assert edited is not first and prices(edited)["ebook"] == (1200, 10_000_000)
    await store.coupons.create(auto10())
    assert prices(await catalog.list("default")) == await fresh(store, clock) == {
        "ebook": (1080, 9_000_000), "course": (4500, 45_000_000)}


async def test_tenants_are_listed_apart() -> None:
    catalog, store, _ = await setup()
    await store.products.create(replace(EBOOK, id="other-ebook", tenant_id="shop-2"))
    assert set(prices(await catalog.list("shop-2"))) == {"other-ebook"}
    assert set(prices(await catalog.list("default"))) == {"ebook", "course"}


async def test_graphql_nodes_are_converted_once_per_view() -> None:
    from cedros_pay.schema.types.product import Product as ProductNode

    catalog, store, _ = await setup(auto10())
    first = await catalog.list("default")
    nodes = [ProductNode.of(v) for v in first.products]
    assert [ProductNode.of(v) for v in (await catalog.list("default")).products] == nodes
    assert all(a is b for a, b in zip(
        nodes, [ProductNode.of(v) for v in first.products], strict=True))
    await store.products.update(replace(EBOOK, fiat_amount=2000))
    listed = (await catalog.list("default")).products
    edited = {n.id: n for n in (ProductNode.of(v) for v in listed)}
    assert edited["ebook"].effective_fiat_price is not None
    assert edited["ebook"].effective_fiat_price.atomic == "1800"
