"""Webhook queue contract: one claimer per row, retries, leases, manual retry (spec 20)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from contract.conftest import T0

from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.storage.store import Store


def hook(i: int, tenant: str = "default") -> PendingWebhook:
    return PendingWebhook(
        id=f"wh_{i:04d}", tenant_id=tenant, url="https://merchant.example/hook",
        payload='{"eventType":"payment.succeeded","b":1,"a":2}', event_type="payment.succeeded",
        headers={"X-Test": "1"}, created_at=T0 + timedelta(milliseconds=i), max_attempts=3,
    )


async def test_enqueued_webhook_round_trips_byte_exact(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    got = await store.webhooks.get("default", "wh_0001")
    assert got is not None
    assert got.payload == '{"eventType":"payment.succeeded","b":1,"a":2}'
    assert (got.status, got.attempts, got.headers) == (WebhookStatus.PENDING, 0, {"X-Test": "1"})


async def test_concurrent_claimers_never_share_a_row(store: Store) -> None:
    for i in range(40):
        await store.webhooks.enqueue(hook(i))

    async def worker() -> list[str]:
        mine: list[str] = []
        while batch := await store.webhooks.claim_due(T0 + timedelta(seconds=1), limit=3):
            mine.extend(w.id for w in batch)
        return mine

    claimed = [i for ids in await asyncio.gather(*(worker() for _ in range(6))) for i in ids]
    assert len(claimed) == 40
    assert len(set(claimed)) == 40


async def test_claim_marks_processing_and_counts_the_attempt(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    now = T0 + timedelta(seconds=1)
    [w] = await store.webhooks.claim_due(now, limit=10)
    assert (w.status, w.attempts, w.last_attempt_at) == (WebhookStatus.PROCESSING, 1, now)
    assert await store.webhooks.claim_due(now, limit=10) == []


async def test_failed_delivery_is_retried_when_due(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    now = T0 + timedelta(seconds=1)
    await store.webhooks.claim_due(now, limit=1)
    await store.webhooks.mark_failed("wh_0001", "HTTP 500", now, now + timedelta(seconds=2))
    assert await store.webhooks.claim_due(now + timedelta(seconds=1), limit=1) == []
    [again] = await store.webhooks.claim_due(now + timedelta(seconds=2), limit=1)
    assert again.attempts == 2 and again.last_error == "HTTP 500"


async def test_final_failure_then_manual_retry(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    now = T0 + timedelta(seconds=1)
    await store.webhooks.claim_due(now, limit=1)
    await store.webhooks.mark_failed("wh_0001", "gone", now, None)
    failed = await store.webhooks.list("default", WebhookStatus.FAILED)
    assert [w.id for w in failed] == ["wh_0001"]
    assert await store.webhooks.claim_due(now + timedelta(days=1), limit=1) == []
    assert await store.webhooks.retry("default", "wh_0001", now)
    [w] = await store.webhooks.claim_due(now, limit=1)
    assert w.attempts == 1


async def test_processing_row_of_a_dead_worker_is_reclaimed_after_its_lease(
    store: Store,
) -> None:
    await store.webhooks.enqueue(hook(1))
    await store.webhooks.claim_due(T0, limit=1)
    lease = timedelta(minutes=5)
    assert await store.webhooks.claim_due(T0 + timedelta(minutes=4), limit=1, lease=lease) == []
    [w] = await store.webhooks.claim_due(T0 + timedelta(minutes=6), limit=1, lease=lease)
    assert w.attempts == 2


async def test_success_then_cleanup_of_completed(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    await store.webhooks.enqueue(hook(2))
    await store.webhooks.claim_due(T0, limit=2)
    await store.webhooks.mark_success("wh_0001", T0)
    got = await store.webhooks.get("default", "wh_0001")
    assert got is not None and got.status is WebhookStatus.SUCCESS and got.completed_at == T0
    assert await store.webhooks.delete_completed_before(T0 + timedelta(hours=1)) == 1
    assert await store.webhooks.get("default", "wh_0001") is None
    assert await store.webhooks.get("default", "wh_0002") is not None


async def test_webhook_admin_calls_are_tenant_scoped(store: Store) -> None:
    await store.webhooks.enqueue(hook(1, tenant="a"))
    assert await store.webhooks.get("b", "wh_0001") is None
    assert await store.webhooks.list("b") == []
    assert not await store.webhooks.retry("b", "wh_0001", T0)
    assert not await store.webhooks.delete("b", "wh_0001")
    assert await store.webhooks.delete("a", "wh_0001")
    assert await store.webhooks.get("a", "wh_0001") is None


async def test_release_gives_a_claim_back_without_spending_an_attempt(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    [w] = await store.webhooks.claim_due(T0, limit=1)
    assert w.attempts == 1
    later = T0 + timedelta(seconds=30)
    assert await store.webhooks.release("wh_0001", later)
    assert not await store.webhooks.release("wh_0001", later)  # no longer processing
    assert await store.webhooks.claim_due(T0 + timedelta(seconds=29), limit=1) == []
    [again] = await store.webhooks.claim_due(later, limit=1)
    assert (again.attempts, again.status) == (1, WebhookStatus.PROCESSING)


async def test_counts_per_status_include_zeros(store: Store) -> None:
    assert await store.webhooks.counts() == dict.fromkeys(WebhookStatus, 0)
    for i in range(3):
        await store.webhooks.enqueue(hook(i, tenant="a" if i else "b"))
    await store.webhooks.claim_due(T0 + timedelta(seconds=1), limit=1)
    counts = await store.webhooks.counts()
    assert counts[WebhookStatus.PENDING] == 2 and counts[WebhookStatus.PROCESSING] == 1
    assert counts[WebhookStatus.FAILED] == counts[WebhookStatus.SUCCESS] == 0


async def test_event_id_round_trips(store: Store) -> None:
    w = hook(1)
    w.event_id = "evt_0123456789abcdef01234567"
    await store.webhooks.enqueue(w)
    got = await store.webhooks.get("default", "wh_0001")
    assert got is not None and got.event_id == "evt_0123456789abcdef01234567"
    [listed] = await store.webhooks.list("default")
    assert listed.event_id == w.event_id


async def test_duplicate_id_is_refused_and_the_first_item_kept(store: Store) -> None:
    await store.webhooks.enqueue(hook(1))
    dup = hook(1)
    dup.payload = "{}"
    try:
        await store.webhooks.enqueue(dup)
    except Exception:  # each backend raises its own integrity error
        pass
    else:
        raise AssertionError("a duplicate webhook id was accepted")
    got = await store.webhooks.get("default", "wh_0001")
    assert got is not None and got.payload != "{}"


async def test_mark_success_many_marks_exactly_the_batch(store: Store) -> None:
    for i in range(3):
        await store.webhooks.enqueue(hook(i))
    await store.webhooks.claim_due(T0 + timedelta(seconds=1), limit=3)
    await store.webhooks.mark_success_many(["wh_0000", "wh_0002"], T0)
    await store.webhooks.mark_success_many([], T0)
    got = {w.id: w.status for w in await store.webhooks.list("default")}
    assert got == {"wh_0000": WebhookStatus.SUCCESS, "wh_0001": WebhookStatus.PROCESSING,
                   "wh_0002": WebhookStatus.SUCCESS}
