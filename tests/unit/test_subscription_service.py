"""The subscriptions resolver on memory repos and a manual clock: what one payment buys
(month ends clamped, renewals from the period end, lapsed ones from now), grace and expiry,
and the events it queues for the merchant (the real webhook queue notifier)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import (
    PaymentTransaction,
    Product,
    SubscriptionConfig,
    SubscriptionStatus,
)
from cedros_pay.core.money import RoundingMode
from cedros_pay.resolvers.admin_auth import SignedHeaders
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quotes
from cedros_pay.resolvers.subscription_proofs import LifecycleProof
from cedros_pay.resolvers.subscriptions import Subscriptions
from cedros_pay.resolvers.webhooks import QueueingNotifier, WebhookTargets
from cedros_pay.storage.store import Store, memory_store

JAN31 = datetime(2024, 1, 31, 9, 15, tzinfo=UTC)
PAYER = Keypair()
WALLET = str(PAYER.pubkey())
PLAN = Product(id="plan", description="Monthly", crypto_amount=5_000_000, crypto_token="USDC",
               subscription=SubscriptionConfig(billing_period="month", allow_x402=True,
                                               grace_period_hours=6))
TERMS = PaymentTerms(network="devnet", payment_address=str(Keypair().pubkey()),
                     token_mint="4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
                     token_symbol="USDC", token_decimals=6, quote_ttl=timedelta(minutes=5),
                     cart_ttl=timedelta(minutes=15))


class World:
    def __init__(self, store: Store, clock: ManualClock, subs: Subscriptions) -> None:
        self.store, self.clock, self.subs = store, clock, subs
        self.paid = 0

    async def payment(self, resource: str = "plan", wallet: str = WALLET) -> str:
        self.paid += 1
        signature = f"sig{self.paid}"
        await self.store.payments.record(PaymentTransaction(
            signature=signature, resource_id=resource, wallet=wallet, amount_atomic=5_000_000,
            asset="USDC", created_at=self.clock.now()))
        return signature

    async def queued(self) -> list[dict[str, object]]:
        rows = await self.store.webhooks.list("default", None, 100)
        return [json.loads(w.payload) | {"_url": w.url} for w in
                sorted(rows, key=lambda w: w.id)]


@pytest.fixture
async def world() -> World:
    store = memory_store()
    await store.products.create(PLAN)
    await store.products.create(Product(id="other", crypto_amount=1, crypto_token="USDC"))
    clock = ManualClock(JAN31)
    pricing = Pricing(store.coupons, clock, RoundingMode.STANDARD)
    quotes = Quotes(store.products, pricing, TERMS,
                    CatalogSnapshots(store.products, store.coupons, pricing, clock))
    notifier = QueueingNotifier(store.webhooks, WebhookTargets("https://m.example/pay", "",
                                                               "https://m.example/subs"),
                                clock=clock, max_attempts=3)
    subs = Subscriptions(repo=store.subscriptions, products=store.products, quotes=quotes,
                         payments=store.payments, notifier=notifier, clock=clock,
                         grace_period_hours=1)
    return World(store, clock, subs)


async def test_a_payment_buys_a_clamped_month_and_renewal_extends_from_its_end(
        world: World) -> None:
    a = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert a.quote is None and a.subscription is not None
    assert a.subscription.current_period_end == datetime(2024, 2, 29, 9, 15, tzinfo=UTC)
    world.clock.advance(timedelta(days=20))
    b = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert b.subscription is not None and b.subscription.id == a.subscription.id
    assert b.subscription.current_period_start == datetime(2024, 2, 29, 9, 15, tzinfo=UTC)
    assert b.subscription.current_period_end == datetime(2024, 3, 29, 9, 15, tzinfo=UTC)
    events = await world.queued()
    assert [e["eventType"] for e in events] == ["subscription.created", "subscription.renewed"]
    assert {e["_url"] for e in events} == {"https://m.example/subs"}
    assert events[1]["subscriptionId"] == a.subscription.id
    assert (events[1]["userId"], events[1]["rail"], events[1]["status"]) == (
        WALLET, "x402", "active")
    assert events[1]["currentPeriodEnd"] == "2024-03-29T09:15:00Z"
    assert "payment_signatures" not in events[1]["metadata"]  # type: ignore[operator]


async def test_each_signature_counts_once_and_must_match(world: World) -> None:
    sig = await world.payment()
    assert (await world.subs.activate("default", "plan", WALLET, sig)).quote is None
    again = await world.subs.activate("default", "plan", WALLET, sig)
    assert again.quote is not None
    assert again.subscription is not None
    assert again.subscription.current_period_end == datetime(2024, 2, 29, 9, 15, tzinfo=UTC)
    other_product = await world.payment("other")
    assert (await world.subs.activate("default", "plan", WALLET, other_product)).quote
    someone = str(Keypair().pubkey())
    theirs = await world.payment(wallet=someone)
    assert (await world.subs.activate("default", "plan", WALLET, theirs)).quote
    assert (await world.subs.activate("default", "plan", WALLET, "stripe:cs_1")).quote
    assert (await world.subs.activate("default", "plan", WALLET, "nothing")).quote


async def test_grace_expiry_and_restart_from_now(world: World) -> None:
    first = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert first.subscription is not None
    end = first.subscription.current_period_end
    world.clock.set(end + timedelta(hours=5))  # the product's 6 h grace beats the server's 1 h
    view = await world.subs.status("default", WALLET, "plan")
    assert view.active is True
    assert await world.subs.expire_overdue() == 0
    world.clock.set(end + timedelta(hours=7))
    assert (await world.subs.status("default", WALLET, "plan")).active is False
    assert await world.subs.expire_overdue() == 1
    assert await world.subs.expire_overdue() == 0
    view = await world.subs.status("default", WALLET, "plan")
    assert view.subscription.status is SubscriptionStatus.EXPIRED
    again = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert again.subscription is not None
    assert again.subscription.current_period_start == world.clock.now()
    assert again.subscription.status is SubscriptionStatus.ACTIVE
    types = [e["eventType"] for e in await world.queued()]
    assert types == ["subscription.created", "subscription.expired", "subscription.renewed"]


def by_payer(world: World, action: str, sub_id: str) -> LifecycleProof:
    """The subscriber's own signed request for `action` (subscription_proofs)."""
    message = f"{action}:{sub_id}:{int(world.clock.now().timestamp())}"
    signature = base64.b64encode(bytes(PAYER.sign_message(message.encode()))).decode()
    return LifecycleProof(signed=SignedHeaders(WALLET, signature, message))


async def test_cancel_immediately_then_a_new_payment_starts_a_new_subscription(
        world: World) -> None:
    first = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert first.subscription is not None
    sub_id = first.subscription.id
    cancelled = await world.subs.cancel(
        "default", sub_id, False, proof=by_payer(world, "cancel-subscription-now", sub_id))
    assert cancelled.status is SubscriptionStatus.CANCELLED
    assert (await world.subs.status("default", WALLET, "plan")).active is False
    with pytest.raises(CedrosError) as err:
        await world.subs.reactivate(
            "default", sub_id, proof=by_payer(world, "reactivate-subscription", sub_id))
    assert err.value.code is ErrorCode.INVALID_FIELD
    fresh = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert fresh.subscription is not None and fresh.subscription.id != first.subscription.id
    assert (await world.subs.status("default", WALLET, "plan")).active is True


async def test_x402_subscriptions_cannot_change_plan_on_stripe(world: World) -> None:
    first = await world.subs.activate("default", "plan", WALLET, await world.payment())
    assert first.subscription is not None
    with pytest.raises(CedrosError) as err:
        await world.subs.change("default", first.subscription.id, "plan", "none")
    assert err.value.code is ErrorCode.INVALID_FIELD
