"""Subscription repository contract (spec 18)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from contract.conftest import T0

from cedros_pay.core.models import Subscription, SubscriptionStatus
from cedros_pay.storage.repos import AlreadyExists
from cedros_pay.storage.store import Store


def sub(sid: str, *, tenant: str = "default", wallet: str = "W", product: str = "p1",
        stripe: str = "", days: int = 30, created: int = 0,
        status: SubscriptionStatus = SubscriptionStatus.ACTIVE) -> Subscription:
    return Subscription(
        id=sid, tenant_id=tenant, product_id=product, wallet=wallet, status=status,
        stripe_subscription_id=stripe, stripe_customer_id="cus_1" if stripe else "",
        payment_method="stripe" if stripe else "x402", billing_period="month",
        current_period_start=T0, current_period_end=T0 + timedelta(days=days),
        created_at=T0 + timedelta(seconds=created), updated_at=T0, metadata={"a": "b"},
    )


async def test_subscription_round_trips(store: Store) -> None:
    await store.subscriptions.create(sub("sub_1", stripe="sub_stripe_1"))
    assert await store.subscriptions.get("default", "sub_1") == sub("sub_1", stripe="sub_stripe_1")
    by_stripe = await store.subscriptions.get_by_stripe_subscription_id("default", "sub_stripe_1")
    assert by_stripe is not None and by_stripe.id == "sub_1"
    assert [s.id for s in await store.subscriptions.list_by_stripe_customer_id(
        "default", "cus_1")] == ["sub_1"]


async def test_stripe_subscription_id_is_unique_but_empty_ones_are_not(store: Store) -> None:
    await store.subscriptions.create(sub("sub_1", stripe="sub_stripe_1"))
    with pytest.raises(AlreadyExists):
        await store.subscriptions.create(sub("sub_2", stripe="sub_stripe_1"))
    await store.subscriptions.create(sub("sub_3"))
    await store.subscriptions.create(sub("sub_4"))


async def test_get_by_wallet_returns_newest_live_subscription(store: Store) -> None:
    await store.subscriptions.create(sub("sub_old", created=0))
    await store.subscriptions.create(sub("sub_new", created=10))
    await store.subscriptions.create(sub("sub_dead", created=20,
                                         status=SubscriptionStatus.CANCELLED))
    got = await store.subscriptions.get_by_wallet("default", "W", "p1")
    assert got is not None and got.id == "sub_new"


async def test_status_period_and_soft_delete(store: Store) -> None:
    await store.subscriptions.create(sub("sub_1"))
    later = T0 + timedelta(days=1)
    assert await store.subscriptions.extend_period("default", "sub_1", later,
                                                   later + timedelta(days=30), later)
    assert await store.subscriptions.update_status("default", "sub_1",
                                                   SubscriptionStatus.PAST_DUE, later)
    got = await store.subscriptions.get("default", "sub_1")
    assert got is not None
    assert got.status is SubscriptionStatus.PAST_DUE
    assert got.current_period_end == later + timedelta(days=30)
    assert await store.subscriptions.delete("default", "sub_1", later)
    got = await store.subscriptions.get("default", "sub_1")
    assert got is not None and got.status is SubscriptionStatus.CANCELLED
    assert got.cancelled_at == later


async def test_active_and_expiring_lists(store: Store) -> None:
    await store.subscriptions.create(sub("sub_a", product="p1", days=5))
    await store.subscriptions.create(sub("sub_b", product="p2", days=40))
    await store.subscriptions.create(sub("sub_c", product="p1", days=5,
                                         status=SubscriptionStatus.EXPIRED))
    assert [s.id for s in await store.subscriptions.list_active("default")] == ["sub_a", "sub_b"]
    assert [s.id for s in await store.subscriptions.list_active("default", "p2")] == ["sub_b"]
    expiring = await store.subscriptions.list_expiring("default", T0 + timedelta(days=10))
    assert [s.id for s in expiring] == ["sub_a"]
    assert [s.id for s in await store.subscriptions.list_by_product("default", "p1")] == [
        "sub_a", "sub_c"]


async def test_subscriptions_are_tenant_scoped(store: Store) -> None:
    await store.subscriptions.create(sub("sub_1", tenant="a"))
    assert await store.subscriptions.get("b", "sub_1") is None
    assert await store.subscriptions.get_by_wallet("b", "W", "p1") is None
    assert await store.subscriptions.list_active("b") == []
    assert not await store.subscriptions.update_status("b", "sub_1",
                                                       SubscriptionStatus.EXPIRED, T0)
