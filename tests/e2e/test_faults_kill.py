"""SIGKILL of a real `cedros-pay serve` while a payment is between the chain and its record.

The transaction has landed (the chain's ledger says so) when the server dies, at one of two
points made deterministic from outside the server:
- its confirmation is on the way: the WebSocket dropped the notification and the sandbox
  holds the `getSignatureStatuses` answer;
- the confirmation arrived and the record is being written: a test session holds a lock on
  `payment_transactions`, so the server's INSERT waits (PostgreSQL shows it waiting).

Either way the buyer sends the same payment again to a restarted server and gets access
exactly once: one payment row, one payment.succeeded event, and a third try is a replay.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
import pytest
from e2e.faults_world import (
    assert_clean_log,
    envelope,
    postgres_storage,
    recorded,
    sandbox_chain,
    started,
    write_config,
)
from support.postgres import plain_dsn
from support.process import ServeProcess
from support.waiting import eventually

pytestmark = pytest.mark.postgres

VERIFY = "/paywall/v1/verify"


async def _pay_after_restart(tmp_path: Path, config: Path, header: str) -> None:
    server = await started(ServeProcess(config, tmp_path, "restarted"))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            again = await client.post(VERIFY, headers={"X-PAYMENT": header})
            assert again.status_code == 200, again.text
            replay = await client.post(VERIFY, headers={"X-PAYMENT": header})
            assert replay.status_code == 402
            assert envelope(replay)["code"] == "payment_already_used"
    finally:
        returncode = server.stop(signal.SIGTERM)
    assert returncode == 0
    assert_clean_log(server)


async def test_sigkill_while_confirming_then_the_same_payment_grants_once(
        tmp_path: Path, postgres_url: str, request: pytest.FixtureRequest) -> None:
    with sandbox_chain() as chain:
        config = write_config(tmp_path / "cedros.yaml", chain, postgres_storage(postgres_url))
        server = await started(ServeProcess(config, tmp_path, "killed"))
        request.addfinalizer(lambda: server.stop(signal.SIGKILL))
        signature, header = chain.payment()
        chain.faults.drop_websockets()
        chain.faults.hold(120, methods={"getSignatureStatuses"})
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            paying = asyncio.create_task(client.post(VERIFY, headers={"X-PAYMENT": header}))
            await eventually(lambda: chain.faults.held and chain.landed(signature),
                             within=30, what="the payment to land and await its status")
            server.process.send_signal(signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                await paying
        assert server.process.wait(10) == -signal.SIGKILL
        chain.faults.drop_websockets(False)
        chain.faults.release()
        assert (await recorded(plain_dsn(postgres_url))).payments == {}

        await _pay_after_restart(tmp_path, config, header)
    (await recorded(plain_dsn(postgres_url))).exactly_once({signature})


async def test_sigkill_while_recording_then_the_same_payment_grants_once(
        tmp_path: Path, postgres_url: str, request: pytest.FixtureRequest) -> None:
    dsn = plain_dsn(postgres_url)
    with sandbox_chain() as chain:
        config = write_config(tmp_path / "cedros.yaml", chain, postgres_storage(postgres_url))
        server = await started(ServeProcess(config, tmp_path, "killed"))
        request.addfinalizer(lambda: server.stop(signal.SIGKILL))
        signature, header = chain.payment()
        blocker = await asyncpg.connect(dsn)
        try:
            lock = blocker.transaction()
            await lock.start()
            # Reads go on (the replay check); the INSERT of the record has to wait.
            await blocker.execute("LOCK TABLE payment_transactions IN EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                paying = asyncio.create_task(
                    client.post(VERIFY, headers={"X-PAYMENT": header}))

                async def insert_waits() -> bool:
                    # A write's lock (the record's INSERT), requested and not granted.
                    waiting: int = await blocker.fetchval(
                        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname = 'payment_transactions' AND l.mode = 'RowExclusiveLock' "
                        "AND NOT l.granted")
                    return waiting == 1

                await eventually(insert_waits, within=30, what="the record to wait on the lock")
                assert chain.landed(signature)
                server.process.send_signal(signal.SIGKILL)
                with pytest.raises(httpx.TransportError):
                    await paying
            assert server.process.wait(10) == -signal.SIGKILL
            await lock.rollback()
        finally:
            await blocker.close()
        # The dead server's transaction never committed: nothing of it is left.
        assert (await recorded(dsn)).payments == {}

        await _pay_after_restart(tmp_path, config, header)
    (await recorded(dsn)).exactly_once({signature})
