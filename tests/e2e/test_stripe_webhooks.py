"""Stripe webhooks end to end: signed events verified by the SDK, processed once."""

from __future__ import annotations

import json
import time

from e2e.stripe_world import WEBHOOK_SECRET, StripeWorld, stripe_world
from support.fake_stripe import sign
from support.faulty_units import inject

from cedros_pay.core.models import PaymentFilter
from cedros_pay.storage.store import memory_store


async def _session(w: StripeWorld, body: dict[str, object]) -> str:
    resp = await w.session(body)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["sessionId"])


async def test_completed_session_is_recorded_verified_and_notified_once() -> None:
    async with stripe_world() as w:
        sid = await _session(w, {"resource": "ebook", "couponCode": "SAVE20",
                                 "metadata": {"order": "7"}})
        before = await w.client.get("/paywall/v1/stripe-session/verify",
                                    params={"session_id": sid})
        assert before.status_code == 404
        assert before.json()["error"]["code"] == "session_not_found"
        _, resp = await w.pay(sid, email="buyer@example.com")
        assert resp.status_code == 200, resp.text
        assert resp.json()["received"] is True and resp.json()["duplicate"] is False
        verify = await w.client.get("/paywall/v1/stripe-session/verify",
                                    params={"session_id": sid})
        assert verify.status_code == 200, verify.text
        v = verify.json()
        assert v["verified"] is True and v["resource_id"] == "ebook"
        assert v["amount"] == "8.00" and v["amount_cents"] == 800 and v["currency"] == "usd"
        assert v["customer"] == "buyer@example.com" and v["session_id"] == sid
        assert v["paid_at"].endswith("Z") and v["metadata"]["order"] == "7"
        tx = await w.store.payments.get("default", f"stripe:{sid}")
        assert tx is not None and tx.amount_atomic == 800 and tx.asset == "USD"
        assert tx.metadata["payment_intent"].startswith("pi_")
        [event] = w.notes.events
        assert event.method == "stripe" and event.event_type == "payment.succeeded"
        assert event.resource_id == "ebook" and event.stripe_session_id == sid
        assert event.fiat_amount_cents == 800 and event.fiat_currency == "usd"
        assert event.stripe_customer == "buyer@example.com"
        assert event.metadata["order"] == "7"
        coupon = await w.store.coupons.get("default", "SAVE20")
        assert coupon is not None and coupon.usage_count == 1
        local = await w.store.sessions.get("default", sid)
        assert local is not None and local.status.value == "completed"


async def test_redelivery_and_a_second_event_for_the_session_change_nothing() -> None:
    async with stripe_world() as w:
        sid = await _session(w, {"resource": "course", "couponCode": "FIVEOFF"})
        payload, first = await w.pay(sid)
        assert first.status_code == 200
        again = await w.deliver(payload)  # Stripe redelivers the same event
        assert again.status_code == 200 and again.json()["duplicate"] is True
        other = w.fake.event("checkout.session.completed", w.fake.sessions[sid])
        second = await w.deliver(other)  # a different event about the paid session
        assert second.status_code == 200 and second.json()["duplicate"] is False
        page = await w.store.payments.page("default", PaymentFilter(), 10)
        assert [tx.signature for tx in page] == [f"stripe:{sid}"]
        assert len(w.notes.events) == 1
        coupon = await w.store.coupons.get("default", "FIVEOFF")
        assert coupon is not None and coupon.usage_count == 1


async def test_forged_stale_and_empty_signatures_are_refused_then_the_genuine_is_taken(
) -> None:
    async with stripe_world() as w:
        sid = await _session(w, {"resource": "ebook"})
        payload = w.fake.event("checkout.session.completed", w.fake.complete(sid),
                               event_id="evt_same_id_for_all")
        forged = sign(payload, "whsec_not_ours")
        stale = sign(payload, WEBHOOK_SECRET, int(time.time()) - 301)
        tampered_body = payload.replace(b'"amount_total": 1000', b'"amount_total": 1')
        for signature, body in ((forged, payload), (stale, payload), ("", payload),
                                ("t=1,v1=", payload), ("garbage", payload),
                                (sign(payload, WEBHOOK_SECRET), tampered_body)):
            resp = await w.deliver(body, signature)
            assert resp.status_code == 402, (signature, resp.text)
            assert resp.json()["error"]["code"] == "invalid_signature"
        missing = await w.client.post("/webhook/stripe", content=payload)
        assert missing.status_code == 402
        assert await w.store.payments.get("default", f"stripe:{sid}") is None
        assert w.notes.events == []
        genuine = await w.deliver(payload)
        assert genuine.status_code == 200, genuine.text
        assert genuine.json() == {"received": True, "eventId": "evt_same_id_for_all",
                                  "duplicate": False, "ignored": False}
        tx = await w.store.payments.get("default", f"stripe:{sid}")
        assert tx is not None and tx.amount_atomic == 1000
        assert len(w.notes.events) == 1


async def test_unknown_event_types_are_acknowledged_and_ignored() -> None:
    async with stripe_world() as w:
        payload = w.fake.event("customer.created", {"id": "cus_1", "object": "customer"})
        resp = await w.deliver(payload)
        assert resp.status_code == 200
        assert resp.json()["ignored"] is True
        assert w.notes.events == []


async def test_unpaid_async_session_waits_for_async_payment_succeeded() -> None:
    async with stripe_world() as w:
        sid = await _session(w, {"resource": "ebook"})
        pending = w.fake.complete(sid, payment_status="unpaid")
        resp = await w.deliver(w.fake.event("checkout.session.completed", pending))
        assert resp.status_code == 200
        assert await w.store.payments.get("default", f"stripe:{sid}") is None
        cleared = dict(pending, payment_status="paid")
        resp = await w.deliver(w.fake.event("checkout.session.async_payment_succeeded",
                                            cleared))
        assert resp.status_code == 200
        assert await w.store.payments.get("default", f"stripe:{sid}") is not None
        assert len(w.notes.events) == 1


async def test_failing_handler_releases_the_event_for_redelivery() -> None:
    store = memory_store()
    faults = inject(store)
    async with stripe_world(store=store) as w:
        sid = await _session(w, {"resource": "ebook"})
        payload = w.fake.event("checkout.session.completed", w.fake.complete(sid))
        faults.record = 1  # the database goes away right after the payment insert
        failed = await w.deliver(payload)
        assert failed.status_code == 500
        assert await w.store.payments.get("default", f"stripe:{sid}") is None
        retried = await w.deliver(payload)
        assert retried.status_code == 200, retried.text
        assert retried.json()["duplicate"] is False
        assert await w.store.payments.get("default", f"stripe:{sid}") is not None
        assert len(w.notes.events) == 1


async def test_cart_session_is_recorded_under_its_cart_id() -> None:
    async with stripe_world() as w:
        resp = await w.client.post("/paywall/v1/cart/checkout", json={
            "items": [{"resource": "ebook", "quantity": 2}, {"resource": "course"}]})
        assert resp.status_code == 200, resp.text
        sid = resp.json()["sessionId"]
        _, paid = await w.pay(sid)
        assert paid.status_code == 200
        tx = await w.store.payments.get("default", f"stripe:{sid}")
        assert tx is not None and tx.resource_id.startswith("cart_")
        assert tx.amount_atomic == 4500 and tx.metadata["item_1_resource"] == "course"


async def test_webhook_under_the_route_prefix_and_at_the_root() -> None:
    async with stripe_world({"CEDROS_ROUTE_PREFIX": "/api"}) as w:
        resp = await w.client.post("/api/paywall/v1/stripe-session",
                                   json={"resource": "ebook"})
        assert resp.status_code == 200, resp.text
        sid = resp.json()["sessionId"]
        payload = w.fake.event("checkout.session.completed", w.fake.complete(sid))
        assert (await w.deliver(payload, path="/webhook/stripe")).status_code == 200
        again = await w.deliver(payload, path="/api/webhook/stripe")
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert (await w.client.get("/webhook/stripe")).status_code == 200
        assert (await w.client.get("/api/webhook/stripe")).status_code == 200


async def test_webhook_info_and_the_redirect_pages() -> None:
    async with stripe_world() as w:
        info = await w.client.get("/webhook/stripe")
        assert info.status_code == 200
        assert "checkout.session.completed" in info.json()["events"]
        sid = await _session(w, {"resource": "ebook"})
        unpaid = await w.client.get("/stripe/success", params={"session_id": sid},
                                    headers={"Accept": "application/json"})
        assert unpaid.json() == {"status": "success", "sessionId": sid, "paid": False}
        await w.pay(sid)
        page = await w.client.get("/stripe/success", params={"session_id": sid})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "payment was received" in page.text and sid in page.text
        paid = await w.client.get("/stripe/success", params={"session_id": sid},
                                  headers={"Accept": "application/json"})
        assert paid.json()["paid"] is True
        hostile = await w.client.get("/stripe/success",
                                     params={"session_id": "<script>alert(1)</script>"})
        assert hostile.status_code == 200 and "<script>" not in hostile.text
        cancel = await w.client.get("/stripe/cancel")
        assert cancel.status_code == 200 and "cancelled" in cancel.text
        cancel_json = await w.client.get("/stripe/cancel",
                                         headers={"Accept": "application/json"})
        assert cancel_json.json() == {"status": "cancelled"}


async def test_signed_body_that_is_not_an_event_is_bad_input() -> None:
    async with stripe_world() as w:
        for body in (b"not json", b"[1,2]", json.dumps({"object": "event"}).encode()):
            resp = await w.deliver(body)
            assert resp.status_code == 400, (body, resp.text)
