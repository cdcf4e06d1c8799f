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


def response(body: bytes = b'{"ok":true}', ttl_h: int = 24) -> StoredResponse:
    return StoredResponse(status=201, headers={"Content-Type": "application/json"}, body=body,
                          created_at=T0, expires_at=T0 + timedelta(hours=ttl_h))


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
