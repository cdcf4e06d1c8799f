"""The webhook outbox on every backend (issue 12: payment recorded => its event queued, or
neither): a staged event commits or rolls back with the writes of its unit of work, the
delivery worker is woken only after the commit, and a paid Stripe session (payment row,
session completed, coupon use, event) is one unit: a failure leaves none of it and the
redelivery does it all, once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from contract.conftest import T0
from contract.test_catalog import coupon
from contract.test_payments import tx
from contract.test_quotes import cart
from support.fake_stripe import sign
from support.faulty_units import InjectedFault, inject

from cedros_pay.bootstrap.stripe import SeenInIdempotencyStore
from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, StripeSession, StripeSessionStatus, WebhookStatus
from cedros_pay.integrations.stripe.client import StripeClient
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.resolvers.stripe_events import StripeEvents
from cedros_pay.resolvers.webhooks import QueueingNotifier, WebhookOutbox, WebhookTargets
from cedros_pay.rest.middleware.state.memory_responses import MemoryIdempotencyStore
from cedros_pay.storage.catalog.yaml_source import YamlCoupons
from cedros_pay.storage.repos import CouponRepo
from cedros_pay.storage.store import Store

HOOK_URL = "http://127.0.0.1:9/hook"
SECRET = "whsec_outbox_contract"
LEASE = timedelta(minutes=2)


@dataclass
class Wakes:
    count: int = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass
class Told:
    events: list[PaymentEvent] = field(default_factory=list)

    async def payment_succeeded(self, event: PaymentEvent) -> None:
        self.events.append(event)


def _outbox(store: Store, wakes: Wakes) -> WebhookOutbox:
    return WebhookOutbox(QueueingNotifier(store.webhooks, WebhookTargets(HOOK_URL),
                                          clock=ManualClock(T0), max_attempts=3, wake=wakes))


def _event(signature: str) -> PaymentEvent:
    return PaymentEvent(event_id="evt_" + "a" * 24, event_timestamp=T0, resource_id="cart_1",
                        method="x402", paid_at=T0, crypto_atomic_amount=1_250_000,
                        crypto_token="USDC", wallet="W1", proof_signature=signature)


async def _queued(store: Store) -> list[dict[str, object]]:
    return [json.loads(w.payload) for w in await store.webhooks.list("default")]


async def test_a_staged_event_commits_with_its_payment_and_wakes_after(store: Store) -> None:
    wakes = Wakes()
    outbox = _outbox(store, wakes)
    await store.carts.save(cart("cart_1"))
    async with store.unit_of_work() as uow:
        assert await uow.payments.record(tx("sig1", resource="cart_1"))
        assert await uow.carts.mark_paid("default", "cart_1", "W1")
        after_commit = await outbox.stage(uow, _event("sig1"))
        assert wakes.count == 0  # the row is not committed yet: nothing to wake for
    assert wakes.count == 0
    after_commit()
    assert wakes.count == 1
    [item] = await store.webhooks.list("default")
    assert (item.status, item.url, item.event_id, item.event_type) == (
        WebhookStatus.PENDING, HOOK_URL, "evt_" + "a" * 24, "payment.succeeded")
    body = json.loads(item.payload)
    assert (body["proofSignature"], body["resourceId"], body["cryptoAtomicAmount"]) == (
        "sig1", "cart_1", 1_250_000)


async def test_a_failing_enqueue_leaves_no_payment_no_paid_cart_no_count(store: Store) -> None:
    wakes = Wakes()
    outbox = _outbox(store, wakes)
    await store.carts.save(cart("cart_1"))
    await store.coupons.create(coupon("SAVE10", limit=5))
    assert await store.carts.claim("default", "cart_1", "sig1", T0, LEASE)
    faults = inject(store)
    faults.enqueue = 1
    with pytest.raises(InjectedFault):
        async with store.unit_of_work() as uow:
            assert await uow.payments.record(tx("sig1", resource="cart_1"))
            assert await uow.carts.mark_paid("default", "cart_1", "W1")
            assert await uow.coupons.increment_usage("default", "SAVE10")
            await outbox.stage(uow, _event("sig1"))
    assert wakes.count == 0
    assert not await store.payments.has_been_processed("sig1")
    stored = await store.carts.get("default", "cart_1")
    assert stored is not None and not stored.is_paid
    counted = await store.coupons.get("default", "SAVE10")
    assert counted is not None and counted.usage_count == 0
    assert await _queued(store) == []
    # The same payment, retried, goes through whole.
    async with store.unit_of_work() as uow:
        assert await uow.payments.record(tx("sig1", resource="cart_1"))
        assert await uow.carts.mark_paid("default", "cart_1", "W1")
        await outbox.stage(uow, _event("sig1"))
    assert [b["proofSignature"] for b in await _queued(store)] == ["sig1"]
    assert await store.carts.has_access("default", "cart_1", "W1")


async def test_a_failing_payment_insert_queues_no_event(store: Store) -> None:
    outbox = _outbox(store, Wakes())
    faults = inject(store)
    faults.record = 1
    with pytest.raises(InjectedFault):
        async with store.unit_of_work() as uow:
            await outbox.stage(uow, _event("sig1"))  # staged first: the insert fails after
            await uow.payments.record(tx("sig1"))
    assert await _queued(store) == []
    assert not await store.payments.has_been_processed("sig1")


async def test_stripe_sessions_commit_and_roll_back_with_the_unit(store: Store) -> None:
    pending = StripeSession(id="cs_old", resource_id="ebook", amount_cents=1000,
                            currency="usd", created_at=T0)
    await store.sessions.save(pending)
    fresh = StripeSession(id="cs_new", resource_id="ebook", amount_cents=500, currency="usd",
                          created_at=T0, status=StripeSessionStatus.COMPLETED, completed_at=T0)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with store.unit_of_work() as uow:
            assert await uow.sessions.mark_completed("default", "cs_old", T0)
            await uow.sessions.save(fresh)
            raise Abort
    old = await store.sessions.get("default", "cs_old")
    assert old is not None and old.status is StripeSessionStatus.PENDING
    assert old.completed_at is None
    assert await store.sessions.get("default", "cs_new") is None
    async with store.unit_of_work() as uow:
        assert await uow.sessions.mark_completed("default", "cs_old", T0)
        assert not await uow.sessions.mark_completed("default", "cs_old", T0)  # once
        await uow.sessions.save(fresh)
    old = await store.sessions.get("default", "cs_old")
    assert old is not None and old.status is StripeSessionStatus.COMPLETED
    new = await store.sessions.get("default", "cs_new")
    assert new is not None and new.amount_cents == 500


# --- a paid Stripe session, through the webhook resolver ------------------------------------


def _stripe_coupon(code: str) -> Coupon:
    return Coupon(code=code, discount_type="percentage", discount_value=Decimal(20),
                  usage_limit=10, created_at=T0, updated_at=T0)


@dataclass
class StripeRig:
    store: Store
    events: StripeEvents
    told: Told
    wakes: Wakes

    async def deliver(self, session_id: str, event_id: str) -> None:
        obj = {"id": session_id, "object": "checkout.session", "mode": "payment",
               "payment_status": "paid", "amount_total": 800, "currency": "usd",
               "customer_email": "buyer@example.com", "payment_intent": "pi_1",
               "metadata": {"resource_id": "ebook", "coupon_code": "SAVE20"}}
        body = json.dumps({"id": event_id, "object": "event",
                           "type": "checkout.session.completed",
                           "data": {"object": obj}}).encode()
        await self.events.receive(body, sign(body, SECRET))

    async def payments(self) -> int:
        return int(await self.store.payments.has_been_processed("stripe:cs_1"))

    async def session_status(self) -> StripeSessionStatus | None:
        s = await self.store.sessions.get("default", "cs_1")
        return s.status if s is not None else None


def _stripe_rig(store: Store, coupons: CouponRepo, *, in_store: bool) -> StripeRig:
    wakes, told = Wakes(), Told()
    events = StripeEvents(
        verifier=StripeClient, webhook_secret=SECRET,
        seen=SeenInIdempotencyStore(MemoryIdempotencyStore(100)), sessions=store.sessions,
        unit_of_work=store.unit_of_work, coupons=coupons, coupons_in_store=in_store,
        notifier=told, clock=ManualClock(T0), outbox=_outbox(store, wakes))
    return StripeRig(store, events, told, wakes)


async def _uses(coupons: CouponRepo) -> int:
    c = await coupons.get("default", "SAVE20")
    assert c is not None
    return c.usage_count


async def test_a_paid_session_is_all_or_nothing_and_queued_once(store: Store) -> None:
    await store.coupons.create(_stripe_coupon("SAVE20"))
    await store.sessions.save(StripeSession(id="cs_1", resource_id="ebook", amount_cents=800,
                                            currency="usd", created_at=T0))
    faults = inject(store)
    rig = _stripe_rig(store, store.coupons, in_store=True)
    faults.enqueue = 1
    with pytest.raises(InjectedFault):
        await rig.deliver("cs_1", "evt_first")
    assert await rig.payments() == 0
    assert await rig.session_status() is StripeSessionStatus.PENDING
    assert await _uses(store.coupons) == 0
    assert await _queued(store) == [] and rig.told.events == [] and rig.wakes.count == 0
    await rig.deliver("cs_1", "evt_first")  # Stripe's redelivery
    await rig.deliver("cs_1", "evt_first")  # and once more: seen
    await rig.deliver("cs_1", "evt_second")  # another event about the paid session
    assert await rig.payments() == 1
    assert await rig.session_status() is StripeSessionStatus.COMPLETED
    assert await _uses(store.coupons) == 1
    [body] = await _queued(store)
    assert (body["method"], body["stripeSessionId"], body["fiatAmountCents"]) == (
        "stripe", "cs_1", 800)
    assert [e.event_id for e in rig.told.events] == [body["eventId"]]
    assert rig.wakes.count == 1


async def test_a_failing_stripe_payment_insert_queues_nothing(store: Store) -> None:
    await store.coupons.create(_stripe_coupon("SAVE20"))
    faults = inject(store)
    rig = _stripe_rig(store, store.coupons, in_store=True)
    faults.record = 1
    with pytest.raises(InjectedFault):
        await rig.deliver("cs_1", "evt_first")
    assert await _queued(store) == [] and await rig.payments() == 0
    assert await rig.session_status() is None  # the session made from the event: gone
    assert await _uses(store.coupons) == 0
    await rig.deliver("cs_1", "evt_first")
    assert len(await _queued(store)) == 1 and await rig.payments() == 1
    assert await rig.session_status() is StripeSessionStatus.COMPLETED


async def test_file_coupons_are_counted_in_memory_after_the_commit(store: Store) -> None:
    yaml = YamlCoupons([_stripe_coupon("SAVE20")])
    await store.coupons.create(_stripe_coupon("SAVE20"))  # a namesake the unit must not touch
    faults = inject(store)
    rig = _stripe_rig(store, yaml, in_store=False)
    faults.enqueue = 1
    with pytest.raises(InjectedFault):
        await rig.deliver("cs_1", "evt_first")
    assert await _uses(yaml) == 0
    await rig.deliver("cs_1", "evt_first")
    await rig.deliver("cs_1", "evt_second")
    assert await _uses(yaml) == 1
    assert await _uses(store.coupons) == 0
    assert len(await _queued(store)) == 1
