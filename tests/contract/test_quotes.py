"""Cart and refund quote contract (specs 06, 08)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contract.conftest import T0

from cedros_pay.core.models import CartItem, CartQuote, RefundQuote
from cedros_pay.storage.store import Store


def cart(cid: str, tenant: str = "default", ttl_min: int = 15) -> CartQuote:
    return CartQuote(
        id=cid, tenant_id=tenant,
        items=[CartItem(resource_id="p1", quantity=2, price_atomic=500_000, asset="USDC",
                        metadata={"coupon": "X"}),
               CartItem(resource_id="p2", quantity=1, price_atomic=250_000, asset="USDC")],
        total_atomic=1_250_000, asset="USDC", metadata={"coupon_codes": "X"},
        created_at=T0, expires_at=T0 + timedelta(minutes=ttl_min),
    )


def refund(rid: str, tenant: str = "default", purchase: str = "sig1") -> RefundQuote:
    return RefundQuote(
        id=rid, tenant_id=tenant, original_purchase_id=purchase, recipient_wallet="W",
        amount_atomic=1_000_000, asset="USDC", token_mint="mint", token_decimals=6,
        reason="broken", created_at=T0, expires_at=T0 + timedelta(minutes=15),
    )


async def test_cart_quote_round_trips(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    assert await store.carts.get("default", "cart_1") == cart("cart_1")


async def test_cart_batch_save_and_get_keep_order(store: Store) -> None:
    await store.carts.save_many([cart("cart_a"), cart("cart_b"), cart("cart_c")])
    got = await store.carts.get_many("default", ["cart_c", "missing", "cart_a"])
    assert [c.id for c in got] == ["cart_c", "cart_a"]


async def test_cart_is_paid_once_even_when_raced(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    wins = await asyncio.gather(*(store.carts.mark_paid("default", "cart_1", f"W{i}")
                                  for i in range(10)))
    assert wins.count(True) == 1
    winner = f"W{wins.index(True)}"
    assert await store.carts.has_access("default", "cart_1", winner)
    assert not await store.carts.has_access("default", "cart_1", "someone-else")


async def test_carts_are_tenant_scoped(store: Store) -> None:
    await store.carts.save(cart("cart_1", tenant="a"))
    assert await store.carts.get("b", "cart_1") is None
    assert not await store.carts.mark_paid("b", "cart_1", "W")
    await store.carts.save(cart("cart_1", tenant="b"))  # may not hijack a's quote
    got = await store.carts.get("a", "cart_1")
    assert got is not None and got.tenant_id == "a"


async def test_expired_unpaid_carts_are_deleted(store: Store) -> None:
    await store.carts.save_many([cart("cart_old", ttl_min=1), cart("cart_paid", ttl_min=1),
                                 cart("cart_new", ttl_min=60)])
    await store.carts.mark_paid("default", "cart_paid", "W")
    assert await store.carts.delete_expired(T0 + timedelta(minutes=5)) == 1
    assert await store.carts.get("default", "cart_old") is None
    assert await store.carts.get("default", "cart_paid") is not None


async def test_refund_quote_round_trips_and_is_found_by_purchase(store: Store) -> None:
    await store.refunds.save(refund("refund_1"))
    assert await store.refunds.get("default", "refund_1") == refund("refund_1")
    by_purchase = await store.refunds.get_by_original_purchase("default", "sig1")
    assert by_purchase is not None and by_purchase.id == "refund_1"


async def test_refund_is_processed_once_and_leaves_pending(store: Store) -> None:
    await store.refunds.save_many([refund("refund_1"), refund("refund_2", purchase="sig2")])
    results = await asyncio.gather(*(store.refunds.mark_processed(
        "default", "refund_1", "admin", f"sig{i}", T0) for i in range(5)))
    assert results.count(True) == 1
    got = await store.refunds.get("default", "refund_1")
    assert got is not None and got.is_processed and got.processed_by == "admin"
    assert [r.id for r in await store.refunds.list_pending("default")] == ["refund_2"]


async def test_processed_refund_cannot_be_overwritten(store: Store) -> None:
    await store.refunds.save(refund("refund_1"))
    await store.refunds.mark_processed("default", "refund_1", "admin", "s", T0)
    changed = refund("refund_1")
    changed.amount_atomic = 1
    await store.refunds.save(changed)
    got = await store.refunds.get("default", "refund_1")
    assert got is not None and got.amount_atomic == 1_000_000


async def test_refund_delete_and_tenant_scope(store: Store) -> None:
    await store.refunds.save(refund("refund_1", tenant="a"))
    assert await store.refunds.get("b", "refund_1") is None
    assert await store.refunds.list_pending("b") == []
    assert not await store.refunds.delete("b", "refund_1")
    assert await store.refunds.delete("a", "refund_1")
    assert await store.refunds.get("a", "refund_1") is None


async def test_expired_pending_refunds_are_deleted(store: Store) -> None:
    await store.refunds.save(refund("refund_1"))
    assert await store.refunds.delete_expired_pending(T0 + timedelta(minutes=10)) == 0
    assert await store.refunds.delete_expired_pending(T0 + timedelta(minutes=20)) == 1
