"""Admin nonce contract: single use, purpose-bound, expiring (spec 13)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contract.conftest import T0

from cedros_pay.core.models import AdminNonce, NonceOutcome
from cedros_pay.storage.store import Store


def nonce(nid: str = "n" * 32, purpose: str = "approve-refund", tenant: str = "default",
          ttl: int = 300) -> AdminNonce:
    return AdminNonce(id=nid, purpose=purpose, tenant_id=tenant, created_at=T0,
                      expires_at=T0 + timedelta(seconds=ttl))


async def test_nonce_is_consumed_once(store: Store) -> None:
    await store.nonces.create(nonce())
    assert await store.nonces.consume("default", "n" * 32, "approve-refund", T0) == \
        NonceOutcome.CONSUMED
    assert await store.nonces.consume("default", "n" * 32, "approve-refund", T0) == \
        NonceOutcome.ALREADY_USED


async def test_concurrent_consumption_has_one_winner(store: Store) -> None:
    await store.nonces.create(nonce())
    outcomes = await asyncio.gather(*(
        store.nonces.consume("default", "n" * 32, "approve-refund", T0) for _ in range(20)))
    assert outcomes.count(NonceOutcome.CONSUMED) == 1
    assert outcomes.count(NonceOutcome.ALREADY_USED) == 19


async def test_nonce_refused_for_another_purpose_and_stays_usable(store: Store) -> None:
    await store.nonces.create(nonce(purpose="list-pending-refunds"))
    assert await store.nonces.consume("default", "n" * 32, "approve-refund", T0) == \
        NonceOutcome.WRONG_PURPOSE
    assert await store.nonces.consume("default", "n" * 32, "list-pending-refunds", T0) == \
        NonceOutcome.CONSUMED


async def test_expired_nonce_is_refused(store: Store) -> None:
    await store.nonces.create(nonce(ttl=300))
    late = T0 + timedelta(seconds=300)
    assert await store.nonces.consume("default", "n" * 32, "approve-refund", late) == \
        NonceOutcome.EXPIRED


async def test_unknown_and_other_tenants_nonces_are_not_found(store: Store) -> None:
    await store.nonces.create(nonce(tenant="a"))
    assert await store.nonces.consume("b", "n" * 32, "approve-refund", T0) == \
        NonceOutcome.NOT_FOUND
    assert await store.nonces.consume("a", "x" * 32, "approve-refund", T0) == \
        NonceOutcome.NOT_FOUND


async def test_delete_expired_nonces(store: Store) -> None:
    await store.nonces.create(nonce("a" * 32, ttl=60))
    await store.nonces.create(nonce("b" * 32, ttl=600))
    assert await store.nonces.delete_expired(T0 + timedelta(seconds=120)) == 1
    assert await store.nonces.consume("default", "b" * 32, "approve-refund", T0) == \
        NonceOutcome.CONSUMED


async def test_nonce_without_purpose_serves_any_operation_once(store: Store) -> None:
    await store.nonces.create(nonce(purpose=""))
    assert await store.nonces.consume("default", "n" * 32, "refund_deny", T0) == \
        NonceOutcome.CONSUMED
    assert await store.nonces.consume("default", "n" * 32, "refund_list", T0) == \
        NonceOutcome.ALREADY_USED
