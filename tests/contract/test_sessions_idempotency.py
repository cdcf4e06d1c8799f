"""Stripe session and idempotency-key contract (specs 08, 10)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contract.conftest import T0

from cedros_pay.core.models import StoredResponse, StripeSession, StripeSessionStatus
from cedros_pay.storage.store import Store


def session(sid: str = "cs_test_1", tenant: str = "default") -> StripeSession:
    return StripeSession(id=sid, tenant_id=tenant, resource_id="p1", amount_cents=500,
                         currency="usd", customer_email="a@b.c", metadata={"m": "1"},
                         created_at=T0)


FINGERPRINT = "5e" * 32


def response(body: bytes = b'{"ok":true}', ttl_h: int = 24,
             fingerprint: str = FINGERPRINT) -> StoredResponse:
    return StoredResponse(status=201, headers={"Content-Type": "application/json"}, body=body,
                          created_at=T0, expires_at=T0 + timedelta(hours=ttl_h),
                          fingerprint=fingerprint)


async def test_stripe_session_completes_once(store: Store) -> None:
    await store.sessions.save(session())
    assert await store.sessions.get("default", "cs_test_1") == session()
    results = await asyncio.gather(*(store.sessions.mark_completed("default", "cs_test_1", T0)
                                     for _ in range(5)))
    assert results.count(True) == 1
    got = await store.sessions.get("default", "cs_test_1")
    assert got is not None and got.status is StripeSessionStatus.COMPLETED
    assert got.completed_at == T0


async def test_stripe_sessions_are_tenant_scoped(store: Store) -> None:
    await store.sessions.save(session(tenant="a"))
    assert await store.sessions.get("b", "cs_test_1") is None
    assert not await store.sessions.mark_completed("b", "cs_test_1", T0)


async def test_idempotency_response_round_trips_until_expiry(store: Store) -> None:
    await store.idempotency.save("default", "POST:/paywall/v1/quote:k1", response())
    got = await store.idempotency.get("default", "POST:/paywall/v1/quote:k1", T0)
    assert got == response()
    assert await store.idempotency.get("other", "POST:/paywall/v1/quote:k1", T0) is None
    late = T0 + timedelta(hours=24)
    assert await store.idempotency.get("default", "POST:/paywall/v1/quote:k1", late) is None
    assert await store.idempotency.delete_expired(late) == 1


async def test_idempotency_save_overwrites_and_delete_removes(store: Store) -> None:
    await store.idempotency.save("default", "k", response(b"one"))
    await store.idempotency.save("default", "k", response(b"\x00two"))
    got = await store.idempotency.get("default", "k", T0)
    assert got is not None and got.body == b"\x00two"
    await store.idempotency.delete("default", "k")
    assert await store.idempotency.get("default", "k", T0) is None


async def test_idempotency_response_keeps_the_fingerprint_of_its_request(store: Store) -> None:
    await store.idempotency.save("default", "k", response())
    got = await store.idempotency.get("default", "k", T0)
    assert got is not None and got.fingerprint == FINGERPRINT
    # A replacement carries its own request's fingerprint, never the old one.
    await store.idempotency.save("default", "k", response(fingerprint="a1" * 32))
    again = await store.idempotency.get("default", "k", T0)
    assert again is not None and again.fingerprint == "a1" * 32
    # Another tenant's key of the same name is a different row.
    await store.idempotency.save("other", "k", response(fingerprint="b2" * 32))
    mine = await store.idempotency.get("default", "k", T0)
    assert mine is not None and mine.fingerprint == "a1" * 32


async def test_a_response_stored_without_a_fingerprint_has_none(store: Store) -> None:
    await store.idempotency.save("default", "old", response(fingerprint=""))
    got = await store.idempotency.get("default", "old", T0)
    assert got is not None and got.fingerprint == ""
