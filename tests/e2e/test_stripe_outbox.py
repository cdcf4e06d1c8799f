"""A paid Checkout session and its merchant webhook in one transaction (issues 11, 12),
through the real flow: the fake Stripe, signed events to the app over HTTP, the delivery
worker, a receiver on 127.0.0.1, on memory, SQLite and PostgreSQL. A failure anywhere in
the unit (the enqueue, the payment insert) leaves no payment, no completed session, no
counted coupon, no queued or published event; Stripe's redelivery then does all of it,
and the merchant hears of the payment exactly once however often Stripe repeats it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.stripe_world import StripeWorld, stripe_world
from support.faulty_units import Faults, inject
from support.webhook_receiver import WebhookReceiver

from cedros_pay.core.models import StripeSessionStatus
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import Store, memory_store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield memory_store()
        return
    if request.param == "sqlite":
        s = await open_store("sqlite", file_path=str(tmp_path / "cards.db"))
    else:
        s = await open_store("postgres", postgres_url=request.getfixturevalue("postgres_url"))
    yield s
    await s.close()


@dataclass
class Rig:
    world: StripeWorld
    faults: Faults
    receiver: WebhookReceiver
    live: list[PaymentEvent]  # what GraphQL `paymentEvents` subscribers saw

    async def state(self, sid: str) -> tuple[bool, StripeSessionStatus | None, int, int]:
        """(payment recorded, session status, SAVE20 uses, queued webhooks)."""
        store = self.world.store
        session = await store.sessions.get("default", sid)
        coupon = await store.coupons.get("default", "SAVE20")
        assert coupon is not None
        return (await store.payments.get("default", f"stripe:{sid}") is not None,
                session.status if session else None, coupon.usage_count,
                len(await store.webhooks.list("default")))


@asynccontextmanager
async def rigged(store: Store) -> AsyncIterator[Rig]:
    """The world with faults armable in its units of work, callbacks to a live receiver
    and a watcher on the live-events hub."""
    faults = inject(store)
    receiver = WebhookReceiver().up()
    try:
        async with stripe_world({"CALLBACK_PAYMENT_SUCCESS_URL": receiver.url},
                                store=store) as w:
            services = await w.app.start()
            hub, live = services.payment_events, []

            async def watch() -> None:
                async for event in hub.subscribe():
                    live.append(event)

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0)  # the watcher subscribes, then waits for events
            assert hub.subscriber_count == 1
            try:
                yield Rig(w, faults, receiver, live)
            finally:
                watcher.cancel()
    finally:
        receiver.down()


async def _session(w: StripeWorld) -> str:
    resp = await w.session({"resource": "ebook", "couponCode": "SAVE20"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["sessionId"])


async def test_a_failing_enqueue_undoes_the_paid_session_until_redelivery(
        store: Store) -> None:
    async with rigged(store) as rig:
        w = rig.world
        sid = await _session(w)
        payload = w.fake.event("checkout.session.completed", w.fake.complete(sid))
        rig.faults.enqueue = 1
        failed = await w.deliver(payload)
        assert failed.status_code == 500, failed.text
        assert await rig.state(sid) == (False, StripeSessionStatus.PENDING, 0, 0)
        assert w.notes.events == [] and rig.live == []
        verify = await w.client.get("/paywall/v1/stripe-session/verify",
                                    params={"session_id": sid})
        assert verify.json()["error"]["code"] == "session_not_found"

        redelivered = await w.deliver(payload)
        assert redelivered.status_code == 200 and redelivered.json()["duplicate"] is False
        assert (await w.deliver(payload)).json()["duplicate"] is True
        other = w.fake.event("checkout.session.completed", w.fake.sessions[sid])
        assert (await w.deliver(other)).status_code == 200  # a second event, same session
        assert await rig.state(sid) == (True, StripeSessionStatus.COMPLETED, 1, 1)
        [delivery] = await rig.receiver.arrived(1, within=10)
        await asyncio.sleep(0.3)  # a woken worker delivers in milliseconds: none follows
        assert len(rig.receiver.snapshot()) == 1
        body = delivery.json()
        assert (body["method"], body["stripeSessionId"], body["fiatAmountCents"],
                body["resourceId"]) == ("stripe", sid, 800, "ebook")
        assert [e.event_id for e in w.notes.events] == [body["eventId"]]
        assert [e.event_id for e in rig.live] == [body["eventId"]]


async def test_a_failing_payment_insert_queues_nothing(
        store: Store) -> None:
    async with rigged(store) as rig:
        w = rig.world
        sid = await _session(w)
        rig.faults.record = 1
        payload, failed = await w.pay(sid)
        assert failed.status_code == 500, failed.text
        assert await rig.state(sid) == (False, StripeSessionStatus.PENDING, 0, 0)
        assert rig.live == []
        assert (await w.deliver(payload)).status_code == 200
        assert await rig.state(sid) == (True, StripeSessionStatus.COMPLETED, 1, 1)
        await rig.receiver.arrived(1, within=10)
        assert len(rig.live) == 1
