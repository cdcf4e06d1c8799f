"""One payment signature activates or extends a subscription once (issue 13), on every
backend: racing activations are settled by the store's claim, not by a process lock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from contract.conftest import T0
from contract.subscription_world import WALLET, pay, plan, subscriptions
from contract.test_subscriptions import sub

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import SubscriptionStatus
from cedros_pay.core.periods import BillingPeriod, Term
from cedros_pay.storage.store import Store

MONTH = Term(BillingPeriod.MONTH, 1)


async def _events(store: Store, tenant: str = "default") -> list[str]:
    rows = await store.webhooks.list(tenant, None, 500)
    return sorted(w.event_type for w in rows)


async def test_fifty_concurrent_first_activations_of_one_signature_create_one(
        store: Store) -> None:
    clock = ManualClock(T0)
    await store.products.create(plan())
    await pay(store, clock, "sig-first")
    subs = subscriptions(store, clock)
    results = await asyncio.gather(*(subs.activate("default", "plan", WALLET, "sig-first")
                                     for _ in range(50)))
    assert [r.quote is None for r in results].count(True) == 1
    rows = await store.subscriptions.list_by_product("default", "plan")
    assert len(rows) == 1 and rows[0].current_period_end == MONTH.end(T0)
    assert await _events(store) == ["subscription.created"]


async def test_fifty_concurrent_renewals_with_one_signature_extend_once(store: Store) -> None:
    clock = ManualClock(T0)
    await store.products.create(plan())
    subs = subscriptions(store, clock)
    await pay(store, clock, "sig-1")
    first = await subs.activate("default", "plan", WALLET, "sig-1")
    assert first.subscription is not None
    end = first.subscription.current_period_end
    await pay(store, clock, "sig-2")
    results = await asyncio.gather(*(subs.activate("default", "plan", WALLET, "sig-2")
                                     for _ in range(50)))
    assert [r.quote is None for r in results].count(True) == 1
    rows = await store.subscriptions.list_by_product("default", "plan")
    assert len(rows) == 1 and rows[0].current_period_end == MONTH.end(end)
    assert await _events(store) == ["subscription.created", "subscription.renewed"]


async def test_racing_renewals_with_different_signatures_each_extend(store: Store) -> None:
    clock = ManualClock(T0)
    await store.products.create(plan())
    subs = subscriptions(store, clock)
    await pay(store, clock, "sig-0")
    await subs.activate("default", "plan", WALLET, "sig-0")
    for i in range(1, 6):
        await pay(store, clock, f"sig-{i}")
    results = await asyncio.gather(*(subs.activate("default", "plan", WALLET, f"sig-{i}")
                                     for i in range(1, 6)))
    assert all(r.quote is None for r in results)
    end = T0
    for _ in range(6):
        end = MONTH.end(end)
    (row,) = await store.subscriptions.list_by_product("default", "plan")
    assert row.current_period_end == end


async def test_replace_if_unchanged_refuses_a_stale_read(store: Store) -> None:
    seen = sub("sub_1")
    await store.subscriptions.create(seen)
    later = T0 + timedelta(days=1)
    first = replace(seen, current_period_end=later + timedelta(days=30), updated_at=later)
    assert await store.subscriptions.replace_if_unchanged(first, seen)
    second = replace(seen, current_period_end=later + timedelta(days=60), updated_at=later)
    assert not await store.subscriptions.replace_if_unchanged(second, seen)
    assert await store.subscriptions.get("default", "sub_1") == first
    assert not await store.subscriptions.replace_if_unchanged(
        replace(first, tenant_id="other"), first)
    assert not await store.subscriptions.replace_if_unchanged(
        replace(first, id="sub_404"), replace(first, id="sub_404"))


async def test_the_expiry_sweep_covers_every_tenant(store: Store) -> None:
    clock = ManualClock(T0)
    subs = subscriptions(store, clock)
    for tenant in ("default", "shop-b"):
        await store.products.create(plan(tenant))
        await pay(store, clock, f"sig-{tenant}", tenant)
        assert (await subs.activate(tenant, "plan", WALLET, f"sig-{tenant}")).quote is None
    await store.subscriptions.create(sub("sub_stripe", tenant="shop-b", stripe="sub_s1",
                                         days=1))
    clock.set(MONTH.end(T0) + timedelta(hours=1))
    assert {s.tenant_id for s in await store.subscriptions.list_expiring(None, clock.now())
            } == {"default", "shop-b"}
    assert len(await store.subscriptions.list_expiring("shop-b", clock.now())) == 2
    assert await subs.expire_overdue("default") == 1
    assert await subs.expire_overdue() == 1  # shop-b's; Stripe's waits for its webhook
    assert await subs.expire_overdue() == 0
    for tenant in ("default", "shop-b"):
        (row, *_) = [s for s in await store.subscriptions.list_by_product(tenant, "plan")]
        assert row.status is SubscriptionStatus.EXPIRED
    assert "subscription.expired" in await _events(store, "shop-b")
    stripe = await store.subscriptions.get("shop-b", "sub_stripe")
    assert stripe is not None and stripe.status is SubscriptionStatus.ACTIVE
