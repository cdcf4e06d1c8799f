"""Unit of work contract: the writes of one payment land together or not at all.

The failing write is the last one of the block (a duplicate webhook id, or an exception
raised after the writes), so every earlier write has really been sent to the database.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from contract.conftest import T0
from contract.test_catalog import coupon
from contract.test_payments import tx
from contract.test_quotes import cart, refund
from contract.test_webhooks import hook

from cedros_pay.storage.store import Store

LEASE = timedelta(minutes=2)


async def _seed(store: Store) -> None:
    await store.carts.save(cart("cart_1"))
    await store.coupons.create(coupon("SAVE10", limit=5))
    await store.refunds.save(refund("refund_1"))
    assert await store.carts.claim("default", "cart_1", "sig1", T0, LEASE)


async def _pay(store: Store, webhook_id: int) -> None:
    """Everything one settled payment writes, the webhook event last."""
    async with store.unit_of_work() as uow:
        assert await uow.payments.record(tx("sig1", resource="cart_1"))
        assert await uow.carts.mark_paid("default", "cart_1", "W1")
        assert await uow.coupons.increment_usage("default", "SAVE10")
        assert await uow.refunds.mark_processed("default", "refund_1", "admin", "rsig", T0)
        await uow.webhooks.enqueue(hook(webhook_id))


async def _assert_nothing_written(store: Store) -> None:
    assert not await store.payments.has_been_processed("sig1")
    got = await store.carts.get("default", "cart_1")
    assert got is not None and not got.is_paid
    assert not await store.carts.has_access("default", "cart_1", "W1")
    stored = await store.coupons.get("default", "SAVE10")
    assert stored is not None and stored.usage_count == 0
    r = await store.refunds.get("default", "refund_1")
    assert r is not None and r.processed_at is None and not r.is_processed
    assert await store.webhooks.get("default", hook(1).id) is None
    # The claim taken before the chain is still held by its payment, not lost.
    assert not await store.carts.claim("default", "cart_1", "other", T0, LEASE)
    assert await store.carts.release_claim("default", "cart_1", "sig1")


async def test_a_unit_of_work_commits_every_write(store: Store) -> None:
    await _seed(store)
    await _pay(store, 1)
    assert await store.payments.has_been_processed("sig1")
    assert await store.carts.has_access("default", "cart_1", "W1")
    stored = await store.coupons.get("default", "SAVE10")
    assert stored is not None and stored.usage_count == 1
    r = await store.refunds.get("default", "refund_1")
    assert r is not None and r.is_processed
    queued = await store.webhooks.get("default", hook(1).id)
    assert queued is not None and queued.payload == hook(1).payload
    # Paying dropped the claim: nothing is left to release.
    assert not await store.carts.release_claim("default", "cart_1", "sig1")


async def test_a_duplicate_key_on_the_last_write_undoes_the_earlier_ones(
        store: Store) -> None:
    await _seed(store)
    await store.webhooks.enqueue(hook(2))
    with pytest.raises(Exception):  # noqa: B017 - each backend has its own duplicate-key error
        await _pay(store, 2)
    await _assert_nothing_written(store)
    assert await store.webhooks.get("default", hook(2).id) is not None  # untouched


async def test_an_exception_after_the_writes_undoes_them(store: Store) -> None:
    await _seed(store)

    class Injected(Exception):
        pass

    with pytest.raises(Injected):
        async with store.unit_of_work() as uow:
            assert await uow.payments.record_many([tx("sig1", resource="cart_1"), tx("sig2")])
            assert await uow.carts.mark_paid("default", "cart_1", "W1")
            assert await uow.coupons.increment_usage("default", "SAVE10")
            assert await uow.refunds.mark_processed("default", "refund_1", "admin", "r", T0)
            await uow.webhooks.enqueue(hook(1))
            raise Injected
    await _assert_nothing_written(store)
    assert not await store.payments.has_been_processed("sig2")


async def test_a_cancelled_unit_of_work_leaves_nothing(store: Store) -> None:
    await _seed(store)
    started = asyncio.Event()

    async def pay_then_hang() -> None:
        async with store.unit_of_work() as uow:
            assert await uow.payments.record(tx("sig1", resource="cart_1"))
            assert await uow.carts.mark_paid("default", "cart_1", "W1")
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(pay_then_hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _assert_nothing_written(store)


async def test_a_refused_conditional_write_keeps_the_unit_usable(store: Store) -> None:
    await _seed(store)
    assert await store.payments.record(tx("sig0"))
    await store.coupons.create(coupon("ONCE", limit=0))
    async with store.unit_of_work() as uow:
        assert not await uow.payments.record(tx("sig0"))
        # A refused batch takes back its own partial insert, and only that.
        assert not await uow.payments.record_many([tx("sig_new"), tx("sig0")])
        assert not await uow.coupons.increment_usage("default", "ONCE")
        assert not await uow.coupons.release_usage("default", "SAVE10")  # nothing to give
        assert await uow.payments.record(tx("sig1", resource="cart_1"))
        assert await uow.carts.mark_paid("default", "cart_1", "W1")
    assert await store.payments.has_been_processed("sig1")
    assert not await store.payments.has_been_processed("sig_new")
    assert await store.carts.has_access("default", "cart_1", "W1")


async def test_concurrent_units_of_work_pay_one_cart_once(store: Store) -> None:
    await store.carts.save(cart("cart_1"))

    async def pay(i: int) -> bool:
        async with store.unit_of_work() as uow:
            assert await uow.payments.record(tx(f"sig{i}", resource="cart_1"))
            if not await uow.carts.mark_paid("default", "cart_1", f"W{i}"):
                raise LookupError("cart paid already")
        return True

    results = await asyncio.gather(*(pay(i) for i in range(10)), return_exceptions=True)
    assert results.count(True) == 1
    assert all(isinstance(r, LookupError) for r in results if r is not True)
    winner = results.index(True)
    for i in range(10):
        assert await store.payments.has_been_processed(f"sig{i}") == (i == winner)
