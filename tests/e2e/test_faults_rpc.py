"""A misbehaving Solana RPC endpoint against a real `cedros-pay serve` (SQLite): 429s, hung
answers, a WebSocket dropped mid-confirmation.

A few 429s are absorbed by retries; a stream of them is `rpc_error` (502, retryable) and
trips the `solana_rpc` breaker, which then refuses at once without touching the node and
lets payments through again after its timeout. An answer that never comes in time is a
clean 503 when the route's deadline passes; the transaction the node took anyway is
recorded once when the buyer retries. A dropped WebSocket falls back to polling. No
payment is recorded without its confirmation, and none that landed is lost.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
from e2e.faults_world import (
    assert_clean_log,
    envelope,
    recorded_sqlite,
    sandbox_chain,
    sqlite_storage,
    started,
    write_config,
)
from support.process import ServeProcess
from support.waiting import eventually

VERIFY = "/paywall/v1/verify"
BREAKER_TIMEOUT = 2.0


async def test_429s_are_retried_then_trip_the_breaker_which_recovers(tmp_path: Path) -> None:
    db = tmp_path / "cedros.db"
    with sandbox_chain() as chain:
        config = write_config(tmp_path / "cedros.yaml", chain, sqlite_storage(db),
                              breaker_timeout=f"{BREAKER_TIMEOUT:g}s")
        server = await started(ServeProcess(config, tmp_path, "serve"))
        faults = chain.faults
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                async def pay(header: str) -> httpx.Response:
                    return await client.post(VERIFY, headers={"X-PAYMENT": header})

                first_sig, first = chain.payment()
                faults.fail_next(2, 429)
                assert (await pay(first)).status_code == 200  # retried past two 429s
                assert faults.pending == 0

                faults.fail_next(10_000, 429)
                refused_sig, refused = chain.payment()
                answer = await pay(refused)
                assert answer.status_code == 502, answer.text
                error = envelope(answer)
                assert error["code"] == "rpc_error" and error["retryable"] is True
                assert not chain.landed(refused_sig)

                for _ in range(5):  # each refused payment adds failures until it opens
                    answer = await pay(refused)
                    assert answer.status_code == 502
                    if envelope(answer)["details"].get("circuit") == "solana_rpc":
                        break
                else:
                    raise AssertionError("the solana_rpc breaker did not open")
                opened = time.monotonic()
                untouched = faults.pending
                answer = await pay(refused)
                assert envelope(answer)["details"]["circuit"] == "solana_rpc"
                assert faults.pending == untouched  # refused without a request to the node

                faults.fail_next(0)
                await asyncio.sleep(max(0.0, BREAKER_TIMEOUT + 0.3 - (time.monotonic() - opened)))
                again = await pay(refused)  # half-open: the trial calls succeed
                assert again.status_code == 200, again.text
                later_sig, later = chain.payment()
                assert (await pay(later)).status_code == 200
        finally:
            returncode = server.stop(signal.SIGTERM)
        assert returncode == 0
        assert_clean_log(server)
        landed = {s for s in (first_sig, refused_sig, later_sig) if chain.landed(s)}
    assert landed == {first_sig, refused_sig, later_sig}
    recorded_sqlite(db).exactly_once(landed)


async def test_a_hung_rpc_answer_fails_cleanly_and_the_landed_payment_is_not_lost(
        tmp_path: Path) -> None:
    db = tmp_path / "cedros.db"
    with sandbox_chain() as chain:
        config = write_config(tmp_path / "cedros.yaml", chain, sqlite_storage(db),
                              request_timeout="5s")
        server = await started(ServeProcess(config, tmp_path, "serve"))
        faults = chain.faults
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                # The node takes the transaction but answers too late for the route.
                signature, header = chain.payment()
                faults.hold(120, methods={"sendTransaction"})
                request = asyncio.create_task(
                    client.post(VERIFY, headers={"X-PAYMENT": header}))
                await eventually(lambda: faults.held, within=30, what="the send to be held")
                answer = await request  # the route's deadline (5 s) passes first
                assert answer.status_code == 503, answer.text
                envelope(answer)
                assert not chain.landed(signature)
                assert recorded_sqlite(db).payments == {}  # nothing without confirmation
                faults.release()  # the node processes the transaction after all
                await eventually(lambda: chain.landed(signature), within=20,
                                 what="the late transaction to land")
                retry = await client.post(VERIFY, headers={"X-PAYMENT": header})
                assert retry.status_code == 200, retry.text
                replay = await client.post(VERIFY, headers={"X-PAYMENT": header})
                assert replay.status_code == 402
                assert envelope(replay)["code"] == "payment_already_used"

                # The WebSocket drops instead of notifying: the payment is confirmed by
                # polling, once.
                faults.drop_websockets()
                dropped_sig, dropped = chain.payment()
                answer = await client.post(VERIFY, headers={"X-PAYMENT": dropped})
                assert answer.status_code == 200, answer.text
                assert faults.dropped >= 1
                faults.drop_websockets(False)
        finally:
            returncode = server.stop(signal.SIGTERM)
        assert returncode == 0
        assert_clean_log(server)
    recorded_sqlite(db).exactly_once({signature, dropped_sig})
