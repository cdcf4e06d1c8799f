"""Card payments on the SQL backends: the session and payment rows on SQLite and a real
PostgreSQL, and two server instances sharing one database receiving the same event at
once (each with its own memory of seen events): still one payment, one notification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api.conftest import client_for
from e2e.stripe_world import WEBHOOK_SECRET, stripe_world
from support.fake_stripe import sign

from cedros_pay.app import create_app
from cedros_pay.core.models import PaymentFilter, StripeSessionStatus
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> AsyncIterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "cards.db")
    else:
        yield "postgres", request.getfixturevalue("postgres_url")


async def _open(kind: str, where: str) -> Store:
    if kind == "sqlite":
        return await open_store("sqlite", file_path=where)
    return await open_store("postgres", postgres_url=where)


async def test_paid_session_on_sql_and_two_instances_racing_one_event(
        backend: tuple[str, str]) -> None:
    store_a, store_b = await _open(*backend), await _open(*backend)
    try:
        async with stripe_world(store=store_a) as w:
            resp = await w.session({"resource": "ebook", "couponCode": "SAVE20",
                                    "customerEmail": "sql@buyer.example"})
            assert resp.status_code == 200, resp.text
            sid = resp.json()["sessionId"]
            pending = await store_b.sessions.get("default", sid)
            assert pending is not None and pending.status is StripeSessionStatus.PENDING
            assert pending.amount_cents == 800 and pending.metadata["coupon_code"] == "SAVE20"
            other = create_app(w.app.config, store=store_b, notifier=w.notes)
            async with client_for(other) as b:
                payload = w.fake.event("checkout.session.completed", w.fake.complete(sid))
                headers = {"Stripe-Signature": sign(payload, WEBHOOK_SECRET),
                           "Content-Type": "application/json"}
                answers = await asyncio.gather(
                    *(c.post("/webhook/stripe", content=payload, headers=headers)
                      for c in (w.client, b, w.client, b)))
                # Per instance: one delivery processes it; its twin, arriving while that
                # runs, is told to come back (409) or, if later, that it is a duplicate.
                for first, twin in ((answers[0], answers[2]), (answers[1], answers[3])):
                    assert first.status_code == 200, first.text
                    assert twin.status_code in (200, 409), twin.text
                    if twin.status_code == 409:
                        assert twin.json()["error"]["details"]["reason"] == "in_progress"
                for c in (w.client, b):  # Stripe's redelivery later: a duplicate
                    again = await c.post("/webhook/stripe", content=payload, headers=headers)
                    assert again.status_code == 200 and again.json()["duplicate"] is True
                verified = await b.get("/paywall/v1/stripe-session/verify",
                                       params={"session_id": sid})
                assert verified.status_code == 200 and verified.json()["amount"] == "8.00"
            rows = await store_b.payments.page("default", PaymentFilter(method="stripe"), 10)
            assert [r.signature for r in rows] == [f"stripe:{sid}"]
            assert rows[0].wallet == "sql@buyer.example" and rows[0].amount_atomic == 800
            assert len(w.notes.events) == 1
            coupon = await store_b.coupons.get("default", "SAVE20")
            assert coupon is not None and coupon.usage_count == 1
            done = await store_b.sessions.get("default", sid)
            assert done is not None and done.status is StripeSessionStatus.COMPLETED
    finally:
        await store_a.close()
        await store_b.close()
