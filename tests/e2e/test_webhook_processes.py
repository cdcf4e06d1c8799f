"""Webhooks survive real server processes (issue 12): `cedros-pay serve` killed with
SIGKILL mid-delivery or stopped with SIGTERM, then restarted on the same database, still
delivers; two servers sharing one PostgreSQL database deliver each event exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from support.process import ServeProcess, log_tail
from support.webhook_receiver import WebhookReceiver

from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.storage.open import open_store

CONFIG = """
x402:
  network: devnet
  payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ
  token_mint: 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU
  rpc_url: http://127.0.0.1:9/
paywall:
  product_source: yaml
  resources:
    p-article: {{description: Article, crypto_atomic_amount: 1000000, crypto_token: USDC}}
coupons: {{coupon_source: disabled}}
storage: {storage}
callbacks:
  payment_success_url: "{url}"
  timeout: 1s
  poll_interval: 100ms
  retry: {{max_attempts: 5, initial_interval: {initial}, max_interval: 5s}}
logging: {{level: info}}
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


def _item(n: int, url: str) -> PendingWebhook:
    now = datetime.now(UTC)
    event = f"evt_{n:024x}"
    return PendingWebhook(id=f"webhook_proc_{n:04d}", url=url, event_type="payment.succeeded",
                          event_id=event, created_at=now, next_attempt_at=now, max_attempts=5,
                          payload=orjson.dumps({"eventId": event,
                                                "eventType": "payment.succeeded"}).decode())


async def _enqueue(backend: str, location: str, items: list[PendingWebhook]) -> None:
    store = await open_store(backend, file_path=location, postgres_url=location)
    try:
        for item in items:
            await store.webhooks.enqueue(item)
    finally:
        await store.close()


async def _get(backend: str, location: str, webhook_id: str) -> PendingWebhook:
    store = await open_store(backend, file_path=location, postgres_url=location)
    try:
        got = await store.webhooks.get("default", webhook_id)
    finally:
        await store.close()
    assert got is not None
    return got


def _sqlite_config(tmp_path: Path, url: str, initial: str = "100ms") -> tuple[Path, str]:
    db = tmp_path / "data" / "cedros.db"
    db.parent.mkdir(exist_ok=True)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(storage=f'{{backend: sqlite, file_path: "{db}"}}', url=url,
                                    initial=initial))
    return config, str(db)


async def test_kill_9_mid_delivery_then_restart_delivers(tmp_path: Path,
                                                         receiver: WebhookReceiver) -> None:
    config, db = _sqlite_config(tmp_path, receiver.url)
    await _enqueue("sqlite", db, [_item(1, receiver.url)])
    receiver.hang_for(5.0)  # the merchant is stuck: the delivery is in flight
    first = ServeProcess(config, tmp_path, "first").started()
    try:
        receiver.wait_for_arrivals(1, timeout=20)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        first.stop(signal.SIGKILL)
    stuck = await _get("sqlite", db, "webhook_proc_0001")
    assert (stuck.status, stuck.attempts) == (WebhookStatus.PROCESSING, 1)
    receiver.hang_for(0.0)
    second = ServeProcess(config, tmp_path, "second").started()
    try:
        # Claimed again once the dead worker's lease (2 x timeout + 1 s) ran out.
        got = receiver.wait_for(1, timeout=20)
        assert got[-1].json()["eventId"] == f"evt_{1:024x}" and got[-1].status == 200
        for _ in range(100):
            done = await _get("sqlite", db, "webhook_proc_0001")
            if done.status is WebhookStatus.SUCCESS:
                break
            await asyncio.sleep(0.05)
        assert (done.status, done.attempts) == (WebhookStatus.SUCCESS, 2)
    finally:
        assert second.stop(signal.SIGTERM) == 0, log_tail(second.log)
    logs = second.log.read_text()
    assert "webhook delivered" in logs and "Traceback" not in logs
    assert "secret-query" not in logs  # URLs are logged without their query string


async def test_sigterm_leaves_the_event_queued_and_a_restart_delivers(
        tmp_path: Path, receiver: WebhookReceiver) -> None:
    config, db = _sqlite_config(tmp_path, receiver.url, initial="1s")
    receiver.down()
    await _enqueue("sqlite", db, [_item(2, receiver.url)])
    first = ServeProcess(config, tmp_path, "first").started()
    try:
        for _ in range(200):
            if (await _get("sqlite", db, "webhook_proc_0002")).attempts >= 1:
                break
            await asyncio.sleep(0.05)
    finally:
        assert first.stop(signal.SIGTERM) == 0, log_tail(first.log)
    queued = await _get("sqlite", db, "webhook_proc_0002")
    assert queued.status is WebhookStatus.PENDING and queued.attempts >= 1
    assert "ConnectError" in queued.last_error
    receiver.up()
    second = ServeProcess(config, tmp_path, "second").started()
    try:
        [got] = receiver.wait_for(1, timeout=20)
        assert got.json()["eventId"] == f"evt_{2:024x}"
    finally:
        assert second.stop(signal.SIGTERM) == 0, log_tail(second.log)


@pytest.mark.postgres
async def test_two_servers_on_postgres_deliver_each_event_once(
        tmp_path: Path, receiver: WebhookReceiver, postgres_url: str) -> None:
    config = tmp_path / "config.yaml"
    storage = f'{{backend: postgres, postgres_url: "{postgres_url}"}}'
    config.write_text(CONFIG.format(storage=storage, url=receiver.url, initial="100ms"))
    receiver.hang_for(0.02)
    await _enqueue("postgres", postgres_url, [])  # migrate before the servers race to
    servers = [ServeProcess(config, tmp_path, "a"), ServeProcess(config, tmp_path, "b")]
    try:
        for server in servers:
            server.started()
        await _enqueue("postgres", postgres_url, [_item(n, receiver.url) for n in range(60)])
        receiver.wait_for(60, timeout=90)  # returns as soon as all 60 are in
        await asyncio.sleep(1.0)  # any double delivery would arrive meanwhile
        got = receiver.snapshot()
        assert len(got) == 60
        assert len({d.headers["x-cedros-delivery-id"] for d in got}) == 60
    finally:
        codes = [s.stop(signal.SIGTERM) for s in servers]
    assert codes == [0, 0], [log_tail(s.log) for s in servers]
    delivered = [s.log.read_text().count("webhook delivered") for s in servers]
    assert sum(delivered) == 60, delivered
