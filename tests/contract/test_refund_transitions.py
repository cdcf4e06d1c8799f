"""Refund writes that race (issue 14): one refund per purchase, and each status transition
won by exactly one caller, on every backend."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from contract.test_quotes import refund

from cedros_pay.core.models import RefundQuote
from cedros_pay.storage.repos import REFUND_APPROVED_AT, refund_status
from cedros_pay.storage.store import Store


def approved(q: RefundQuote) -> RefundQuote:
    return replace(q, metadata={**q.metadata, REFUND_APPROVED_AT: "2026-01-01T12:00:00Z"})


async def test_concurrent_first_requests_create_one_refund(store: Store) -> None:
    tries = [refund(f"refund_{i}") for i in range(50)]
    stored = await asyncio.gather(*(store.refunds.create_once(q) for q in tries))
    assert len({s.id for s in stored}) == 1
    winner = stored[0].id
    assert sum(s is q for s, q in zip(stored, tries, strict=True)) <= 1
    assert [r.id for r in await store.refunds.list_pending("default")] == [winner]
    got = await store.refunds.get_by_original_purchase("default", "sig1")
    assert got is not None and got.id == winner


async def test_create_once_answers_an_existing_refund_per_tenant_and_purchase(
        store: Store) -> None:
    first = await store.refunds.create_once(refund("refund_1"))
    assert first == refund("refund_1")
    again = await store.refunds.create_once(refund("refund_2"))
    assert again.id == "refund_1"
    other = await store.refunds.create_once(refund("refund_3", purchase="sig2"))
    elsewhere = await store.refunds.create_once(refund("refund_4", tenant="b"))
    assert (other.id, elsewhere.id) == ("refund_3", "refund_4")
    await store.refunds.mark_processed("default", "refund_1", "admin", "rsig", first.created_at)
    processed = await store.refunds.create_once(refund("refund_5"))
    assert processed.id == "refund_1" and processed.is_processed
    assert await store.refunds.get("default", "refund_5") is None


async def test_approve_racing_deny_has_exactly_one_winner(store: Store) -> None:
    for i in range(10):
        q = refund(f"refund_{i}", purchase=f"sig{i}")
        await store.refunds.create_once(q)
        approve = store.refunds.transition(approved(q), "pending")
        deny = store.refunds.delete_if("default", q.id, "pending")
        if i % 2:  # either may be scheduled first
            won_approve, won_deny = await asyncio.gather(approve, deny)
        else:
            won_deny, won_approve = await asyncio.gather(deny, approve)
        assert won_approve != won_deny
        got = await store.refunds.get("default", q.id)
        if won_approve:
            assert got is not None and refund_status(got) == "approved"
        else:
            assert got is None


async def test_transitions_need_the_stored_status(store: Store) -> None:
    q = refund("refund_1")
    await store.refunds.save(q)
    assert not await store.refunds.transition(approved(q), "approved")
    assert not await store.refunds.delete_if("default", "refund_1", "approved")
    assert not await store.refunds.transition(replace(approved(q), tenant_id="b"), "pending")
    assert await store.refunds.transition(approved(q), "pending")
    assert not await store.refunds.transition(approved(q), "pending")  # a second approve
    assert await store.refunds.transition(approved(q), "approved")  # a re-quote
    assert await store.refunds.get("default", "refund_1") == approved(q)
    assert not await store.refunds.delete_if("default", "refund_1", "pending")
    assert await store.refunds.delete_if("default", "refund_1", "approved")
    # Denied is gone: nothing brings it back.
    assert not await store.refunds.transition(approved(q), "approved")
    assert await store.refunds.get("default", "refund_1") is None


async def test_a_processed_refund_takes_no_transition(store: Store) -> None:
    q = approved(refund("refund_1"))
    await store.refunds.save(q)
    await store.refunds.mark_processed("default", "refund_1", "admin", "rsig", q.created_at)
    assert not await store.refunds.transition(q, "approved")
    assert not await store.refunds.delete_if("default", "refund_1", "approved")
    got = await store.refunds.get("default", "refund_1")
    assert got is not None and got.is_processed
