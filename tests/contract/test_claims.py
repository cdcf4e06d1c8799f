"""Claims before the chain: a cart claim and a coupon use reservation, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from contract.conftest import T0
from contract.test_catalog import coupon
from contract.test_quotes import cart

from cedros_pay.storage.store import Store

LEASE = timedelta(minutes=2)


async def test_fifty_concurrent_claims_of_one_cart_give_one_winner(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    results = await asyncio.gather(*(store.carts.claim("default", "cart_1", f"sig{i}", T0, LEASE)
                                     for i in range(50)))
    assert results.count(True) == 1


async def test_a_claim_refuses_others_until_released(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    assert await store.carts.claim("default", "cart_1", "sigA", T0, LEASE)
    assert await store.carts.claim("default", "cart_1", "sigA", T0, LEASE)  # a resend
    assert not await store.carts.claim("default", "cart_1", "sigB", T0, LEASE)
    assert not await store.carts.release_claim("default", "cart_1", "sigB")
    assert not await store.carts.release_claim("other", "cart_1", "sigA")
    assert await store.carts.release_claim("default", "cart_1", "sigA")
    assert not await store.carts.release_claim("default", "cart_1", "sigA")
    assert await store.carts.claim("default", "cart_1", "sigB", T0, LEASE)


async def test_a_claim_ends_with_its_lease(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    assert await store.carts.claim("default", "cart_1", "sigA", T0, LEASE)
    assert not await store.carts.claim("default", "cart_1", "sigB",
                                       T0 + LEASE - timedelta(seconds=1), LEASE)
    assert await store.carts.claim("default", "cart_1", "sigB", T0 + LEASE, LEASE)
    # The expired holder can neither take it back nor release the new holder's claim.
    assert not await store.carts.claim("default", "cart_1", "sigA", T0 + LEASE, LEASE)
    assert not await store.carts.release_claim("default", "cart_1", "sigA")


async def test_paid_missing_and_foreign_carts_cannot_be_claimed(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    await store.carts.save(cart("cart_2", tenant="b"))
    assert not await store.carts.claim("default", "cart_404", "sig", T0, LEASE)
    assert not await store.carts.claim("default", "cart_2", "sig", T0, LEASE)
    assert await store.carts.claim("default", "cart_1", "sig", T0, LEASE)
    assert await store.carts.mark_paid("default", "cart_1", "W1")
    assert not await store.carts.claim("default", "cart_1", "sig", T0, LEASE)
    assert not await store.carts.claim("default", "cart_1", "sig2", T0 + 2 * LEASE, LEASE)
    with pytest.raises(ValueError):
        await store.carts.claim("default", "cart_2", "", T0, LEASE)


async def test_a_claim_survives_a_resave_and_keeps_the_cleanup_away(store: Store) -> None:
    await store.carts.save(cart("cart_1", ttl_min=1))
    await store.carts.save(cart("cart_2", ttl_min=1))
    assert await store.carts.claim("default", "cart_1", "sig", T0 + timedelta(seconds=50),
                                   LEASE)
    await store.carts.save(cart("cart_1", ttl_min=1))
    assert not await store.carts.claim("default", "cart_1", "other", T0, LEASE)
    # Both expired at T0+1min; only the unclaimed one goes while the lease runs.
    assert await store.carts.delete_expired(T0 + timedelta(minutes=2)) == 1
    assert await store.carts.get("default", "cart_1") is not None
    assert await store.carts.get("default", "cart_2") is None
    assert await store.carts.delete_expired(T0 + timedelta(minutes=3)) == 1
    assert await store.carts.get("default", "cart_1") is None


async def test_a_reservation_given_back_frees_the_use(store: Store) -> None:
    await store.coupons.create(coupon("ONE", limit=1))
    assert await store.coupons.increment_usage("default", "ONE")
    assert not await store.coupons.increment_usage("default", "ONE")
    assert await store.coupons.release_usage("default", "ONE")
    got = await store.coupons.get("default", "ONE")
    assert got is not None and got.usage_count == 0
    assert not await store.coupons.release_usage("default", "ONE")  # never below zero
    assert not await store.coupons.release_usage("default", "MISSING")
    assert not await store.coupons.release_usage("b", "ONE")
    assert await store.coupons.increment_usage("default", "ONE")


async def test_concurrent_reserve_and_give_back_keep_the_count_exact(store: Store) -> None:
    await store.coupons.create(coupon("MANY", limit=None))

    async def reserve_then_fail() -> None:
        assert await store.coupons.increment_usage("default", "MANY")
        await asyncio.sleep(0)
        assert await store.coupons.release_usage("default", "MANY")

    await asyncio.gather(*(reserve_then_fail() for _ in range(20)))
    got = await store.coupons.get("default", "MANY")
    assert got is not None and got.usage_count == 0
