"""Webhook delivery against a real HTTP receiver on 127.0.0.1 (issue 12): shape, headers
and HMAC; retries with growing gaps; the dead-letter path; an open breaker that delays
without spending attempts; shutdown that leaves queued items queued."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api.conftest import config_from
from support.webhook_receiver import WebhookReceiver

from cedros_pay.bootstrap.webhooks import Webhooks, build_webhooks
from cedros_pay.config import Config
from cedros_pay.core.clock import SystemClock
from cedros_pay.core.ids import new_event_id
from cedros_pay.core.models import WebhookStatus
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.observability import PrometheusHook, PrometheusMetrics
from cedros_pay.observability.hooks import BaseHook, HookRegistry, WebhookFailedEvent
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.resolvers.webhooks import RefundEvent
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import Store, memory_store

SECRET = "whsec_test_0123456789"
WALLET = "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ"


def callbacks_yaml(url: str, *, max_attempts: int = 3, dlq: Path | None = None,
                   breaker_failures: int = 50, breaker_timeout: str = "30s") -> str:
    return f"""
callbacks:
  payment_success_url: "{url}"
  headers: {{X-Merchant-Token: tok-123}}
  timeout: 1s
  poll_interval: 50ms
  hmac_secret: {SECRET}
  retry: {{max_attempts: {max_attempts}, initial_interval: 100ms, max_interval: 1s,
           multiplier: 2.0}}
  dlq_enabled: {"true" if dlq else "false"}
  dlq_path: "{dlq or ''}"
circuit_breaker:
  webhook: {{consecutive_failures: {breaker_failures}, timeout: {breaker_timeout},
             min_requests: 1000, interval: 0s}}
"""


class Recorder(BaseHook):
    def __init__(self) -> None:
        self.failed: list[WebhookFailedEvent] = []

    def on_webhook_failed(self, event: WebhookFailedEvent) -> None:
        self.failed.append(event)


class Rig:
    def __init__(self, webhooks: Webhooks, store: Store, metrics: PrometheusMetrics,
                 recorder: Recorder) -> None:
        self.webhooks = webhooks
        self.store = store
        self.metrics = metrics
        self.recorder = recorder

    async def pay(self, resource: str = "article") -> PaymentEvent:
        now = datetime.now(UTC)
        event = PaymentEvent(event_id=new_event_id(), event_timestamp=now, resource_id=resource,
                             method="x402", paid_at=now, crypto_atomic_amount=1_500_000,
                             crypto_token="USDC", wallet=WALLET, proof_signature="5sig",
                             metadata={"order": "42"})
        await self.webhooks.notifier.payment_succeeded(event)
        return event

    async def only(self) -> Any:
        [item] = await self.store.webhooks.list("default")
        return item


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


async def rig_for(cfg: Config, tmp_path: Path) -> AsyncIterator[Rig]:
    store = await open_store("sqlite", file_path=str(tmp_path / "hooks.db"))
    hooks = HookRegistry()
    metrics = PrometheusMetrics()
    hooks.register(PrometheusHook(metrics))
    recorder = Recorder()
    hooks.register(recorder)
    lifecycle = Lifecycle()
    async with httpx.AsyncClient() as http:
        webhooks = build_webhooks(cfg, store, SystemClock(), http=http, hooks=hooks)
        webhooks.start(lifecycle)
        try:
            yield Rig(webhooks, store, metrics, recorder)
        finally:
            await lifecycle.close()
            await store.close()


def _config(tmp_path: Path, yaml: str) -> Config:
    path = tmp_path / "callbacks.yaml"
    path.write_text(yaml)
    return config_from(yaml_path=str(path))


@pytest.fixture
async def rig(receiver: WebhookReceiver, tmp_path: Path) -> AsyncIterator[Rig]:
    async for r in rig_for(_config(tmp_path, callbacks_yaml(receiver.url)), tmp_path):
        yield r


async def test_delivery_shape_headers_and_a_verified_hmac(rig: Rig,
                                                          receiver: WebhookReceiver) -> None:
    event = await rig.pay()
    [got] = await receiver.arrived(1)
    item = await rig.only()
    assert got.path == "/hooks/cedros?token=secret-query"
    h = got.headers
    assert h["content-type"] == "application/json"
    assert h["x-cedros-event-type"] == "payment.succeeded"
    assert h["x-cedros-delivery-id"] == item.id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", h["x-cedros-timestamp"])
    assert h["x-merchant-token"] == "tok-123"
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert h["x-cedros-signature"] == f"sha256={expected}"
    body = got.json()
    assert re.fullmatch(r"evt_[0-9a-f]{24}", body["eventId"]) and body["eventId"] == event.event_id
    assert body == {
        "eventId": event.event_id, "eventType": "payment.succeeded",
        "eventTimestamp": body["eventTimestamp"], "resourceId": "article", "method": "x402",
        "cryptoAtomicAmount": 1_500_000, "cryptoToken": "USDC", "wallet": WALLET,
        "proofSignature": "5sig", "metadata": {"order": "42"}, "paidAt": body["paidAt"],
    }
    assert "resource" not in body and isinstance(body["cryptoAtomicAmount"], int)
    for _ in range(100):
        item = await rig.only()
        if item.status is WebhookStatus.SUCCESS:
            break
        await asyncio.sleep(0.02)
    assert (item.status, item.attempts, item.event_id) == (WebhookStatus.SUCCESS, 1,
                                                           event.event_id)
    text = rig.metrics.exposition()[0].decode()
    assert 'webhooks_total{event_type="payment.succeeded",status="success"} 1.0' in text


async def test_refund_payload_as_spec_03_writes_it(rig: Rig, receiver: WebhookReceiver) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await rig.webhooks.notifier.refund_succeeded(RefundEvent(
        refund_id="refund_" + "a" * 32, original_purchase_id="5sig", recipient_wallet=WALLET,
        atomic_amount=250_000, token="USDC", processed_by="admin", signature="rsig",
        reason="duplicate", refunded_at=at))
    [got] = await receiver.arrived(1)
    body = got.json()
    assert got.headers["x-cedros-event-type"] == "refund.succeeded"
    assert {k: v for k, v in body.items() if k != "eventId"} == {
        "eventType": "refund.succeeded", "eventTimestamp": "2026-01-02T03:04:05Z",
        "refundId": "refund_" + "a" * 32, "originalPurchaseId": "5sig",
        "recipientWallet": WALLET, "atomicAmount": 250_000, "token": "USDC",
        "processedBy": "admin", "signature": "rsig", "reason": "duplicate", "metadata": {},
        "refundedAt": "2026-01-02T03:04:05Z"}


async def test_500_500_200_is_three_deliveries_of_one_event_with_growing_gaps(
        rig: Rig, receiver: WebhookReceiver) -> None:
    receiver.fail_next(2, status=500)
    await rig.pay()
    got = await receiver.arrived(3)
    await asyncio.sleep(0.4)  # nothing more comes
    got = receiver.snapshot()
    assert [d.status for d in got] == [500, 500, 200]
    assert len({d.json()["eventId"] for d in got}) == 1
    assert len({d.body for d in got}) == 1  # the same bytes, so the same signature
    assert len({d.headers["x-cedros-delivery-id"] for d in got}) == 1
    first, second = got[1].at - got[0].at, got[2].at - got[1].at
    assert first >= 0.1 and second >= 0.2 and second > first
    item = await rig.only()
    assert (item.status, item.attempts) == (WebhookStatus.SUCCESS, 3)


async def test_receiver_down_means_max_attempts_then_failed_and_one_dlq_line(
        receiver: WebhookReceiver, tmp_path: Path) -> None:
    dlq = tmp_path / "dlq" / "webhook-dlq.json"
    receiver.down()
    cfg = _config(tmp_path, callbacks_yaml(receiver.url, max_attempts=3, dlq=dlq))
    async for rig in rig_for(cfg, tmp_path):
        event = await rig.pay()
        for _ in range(200):
            item = await rig.only()
            if item.status is WebhookStatus.FAILED:
                break
            await asyncio.sleep(0.02)
        assert (item.status, item.attempts) == (WebhookStatus.FAILED, 3)
        assert "ConnectError" in item.last_error
        assert [(f.attempt, f.final) for f in rig.recorder.failed] == [
            (1, False), (2, False), (3, True)]
        receiver.up()
        await asyncio.sleep(0.5)  # never retried automatically
        assert receiver.snapshot() == []
        [line] = dlq.read_text().splitlines()
        dead = orjson.loads(line)
        assert (dead["id"], dead["attempts"], dead["eventType"]) == (
            item.id, 3, "payment.succeeded")
        assert dead["payload"]["eventId"] == event.event_id
        assert "ConnectError" in dead["lastError"] and dead["url"] == receiver.url
        text = rig.metrics.exposition()[0].decode()
        assert ('webhooks_total{event_type="payment.succeeded",status="dead_letter"} 1.0'
                in text)


async def test_an_open_breaker_delays_without_spending_attempts(
        receiver: WebhookReceiver, tmp_path: Path) -> None:
    cfg = _config(tmp_path, callbacks_yaml(receiver.url, max_attempts=5, breaker_failures=2,
                                           breaker_timeout="1s"))
    async for rig in rig_for(cfg, tmp_path):
        receiver.fail_next(2, status=503)
        await rig.pay("first")
        await receiver.arrived(2)
        await asyncio.sleep(0.1)
        await rig.pay("second")  # queued while the breaker is open
        await asyncio.sleep(0.5)  # retries of "first" fall due meanwhile
        assert len(receiver.snapshot()) == 2
        items = {w.payload: w for w in await rig.store.webhooks.list("default")}
        by_resource = {orjson.loads(p)["resourceId"]: w for p, w in items.items()}
        assert by_resource["first"].attempts == 2
        assert by_resource["second"].attempts == 0
        assert all(w.status is WebhookStatus.PENDING for w in items.values())
        got = await receiver.arrived(4, within=5)  # half-open after 1 s: both delivered
        assert sorted(d.json()["resourceId"] for d in got[2:]) == ["first", "second"]
        await asyncio.sleep(0.2)
        final = {orjson.loads(w.payload)["resourceId"]: w
                 for w in await rig.store.webhooks.list("default")}
        assert (final["first"].status, final["first"].attempts) == (WebhookStatus.SUCCESS, 3)
        assert (final["second"].status, final["second"].attempts) == (WebhookStatus.SUCCESS, 1)


async def test_shutdown_leaves_queued_items_queued(receiver: WebhookReceiver,
                                                   tmp_path: Path) -> None:
    receiver.fail_next(1, status=500)
    cfg = _config(tmp_path, callbacks_yaml(receiver.url).replace(
        "initial_interval: 100ms, max_interval: 1s", "initial_interval: 1h, max_interval: 2h"))
    async for rig in rig_for(cfg, tmp_path):
        await rig.pay()
        await receiver.arrived(1)
        await asyncio.sleep(0.1)
    store = await open_store("sqlite", file_path=str(tmp_path / "hooks.db"))
    try:
        [item] = await store.webhooks.list("default")
        assert (item.status, item.attempts) == (WebhookStatus.PENDING, 1)
        assert item.next_attempt_at is not None
    finally:
        await store.close()


async def test_hmac_secret_from_the_environment_and_poll_interval_capped(
        tmp_path: Path) -> None:
    cfg = config_from({"CALLBACK_HMAC_SECRET": "from-env",
                       "CALLBACK_PAYMENT_SUCCESS_URL": "http://127.0.0.1:9/h"})
    assert cfg.callbacks.hmac_secret == "from-env"
    slow = _config(tmp_path, "callbacks: {poll_interval: 1m}\n")
    async with httpx.AsyncClient() as http:
        webhooks = build_webhooks(slow, memory_store(), SystemClock(), http=http,
                                  hooks=HookRegistry())
    assert webhooks.delivery.poll_interval == 5.0
    assert webhooks.delivery.lease.total_seconds() == 2 * 3 + 1  # default 3 s timeout
