"""PostgreSQL stopped and started again under load, against a real `cedros-pay serve`.

While the database is down every request that needs it is a clean 503
`database_unavailable` (retryable), never a 500 or a stack trace, and `/cedros-health`
says so; a payment whose transaction landed while its record could not be written leaves
no row behind and is recorded once when the buyer sends it again; when the server comes
back the pool reconnects by itself and payments succeed again. At the end, every
transaction that landed on the chain is recorded exactly once, with one payment.succeeded
event, whatever happened to the request that carried it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from e2e.faults_world import (
    Chain,
    PrivatePostgres,
    assert_clean_log,
    envelope,
    postgres_storage,
    recorded,
    sandbox_chain,
    started,
    write_config,
)
from support.process import ServeProcess
from support.waiting import eventually

pytestmark = pytest.mark.postgres

VERIFY = "/paywall/v1/verify"
CART = {"items": [{"resource": "article", "quantity": 1}]}


@contextlib.asynccontextmanager
async def load(client: httpx.AsyncClient, seen: Counter[tuple[int, str]],
               workers: int = 3) -> AsyncIterator[None]:
    """Cart quotes (a database write each) and health checks, back to back, meanwhile."""
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            for method, path, body in (("POST", "/paywall/v1/cart/quote", CART),
                                       ("GET", "/cedros-health", None)):
                response = await client.request(method, path, json=body)
                code = "" if response.status_code < 400 or path == "/cedros-health" \
                    else envelope(response)["code"]
                seen[(response.status_code, code)] += 1

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_postgres_outage_under_load_fails_cleanly_and_recovers(tmp_path: Path) -> None:
    database = PrivatePostgres()
    try:
        with sandbox_chain() as chain:
            await _outage(tmp_path, database, chain)
    finally:
        database.close()


async def _outage(tmp_path: Path, database: PrivatePostgres, chain: Chain) -> None:
    config = write_config(tmp_path / "cedros.yaml", chain, postgres_storage(database.url))
    server = await started(ServeProcess(config, tmp_path, "serve"))
    seen: Counter[tuple[int, str]] = Counter()
    outcomes: dict[str, list[int]] = {}  # signature -> statuses of its attempts
    headers: dict[str, str] = {}

    async def pay(signature: str, header: str) -> httpx.Response:
        response = await client.post(VERIFY, headers={"X-PAYMENT": header})
        outcomes.setdefault(signature, []).append(response.status_code)
        headers[signature] = header
        return response

    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            assert (await pay(*chain.payment())).status_code == 200
            async with load(client, seen):
                await asyncio.sleep(0.5)
                # One payment lands on the chain, then waits for its confirmation (the
                # WebSocket dropped, the status answer held) while the database goes away.
                chain.faults.drop_websockets()
                chain.faults.hold(60, methods={"getSignatureStatuses"})
                stranded_sig, stranded = chain.payment()
                in_flight = asyncio.create_task(pay(stranded_sig, stranded))
                await eventually(lambda: chain.faults.held and chain.landed(stranded_sig),
                                 within=30, what="the stranded payment to land")
                await asyncio.to_thread(database.stop)
                chain.faults.drop_websockets(False)
                chain.faults.release()
                refused = await in_flight
                assert refused.status_code == 503, refused.text
                error = envelope(refused)
                assert error["code"] == "database_unavailable" and error["retryable"] is True

                down = await client.get("/cedros-health")
                assert down.status_code == 503
                assert down.json()["status"] == "error"  # spec 02: the database is gone
                during = [await pay(*chain.payment()) for _ in range(3)]
                for response in during:  # refused before the chain: nothing was sent
                    assert response.status_code == 503, response.text
                    assert envelope(response)["code"] == "database_unavailable"
                quote = await client.post("/paywall/v1/cart/quote", json=CART)
                assert quote.status_code == 503
                assert envelope(quote)["code"] == "database_unavailable"
                graphql = await client.post("/graphql", json={
                    "query": '{ cart(id: "cart_%s") { id } }' % ("0" * 32)})
                [gql_error] = graphql.json()["errors"]
                assert gql_error["extensions"]["code"] == "database_unavailable", graphql.text
                await asyncio.sleep(0.5)

                await asyncio.to_thread(database.start)

                async def healthy() -> bool:
                    return (await client.get("/cedros-health")).status_code == 200

                await eventually(healthy, within=30, what="the server to see its database")
                # The stranded payment's unit of work died with the connection: no row,
                # no event, although its money moved.
                before_retry = await recorded(database.dsn)
                assert stranded_sig not in before_retry.payments
                assert stranded_sig not in before_retry.events
                await asyncio.sleep(0.5)
            after_sig, after_header = chain.payment()
            after = await pay(after_sig, after_header)
            assert after.status_code == 200, after.text
            assert after_sig in after.text

            # The buyers retry what failed: landed or not, each is now recorded once.
            for signature, statuses in list(outcomes.items()):
                if 200 not in statuses:
                    retry = await pay(signature, headers[signature])
                    assert retry.status_code == 200, retry.text
            replay = await client.post(VERIFY, headers={"X-PAYMENT": stranded})
            assert replay.status_code == 402
            assert envelope(replay)["code"] == "payment_already_used"
    finally:
        returncode = server.stop(signal.SIGTERM)

    assert returncode == 0
    assert_clean_log(server)
    assert not any(status >= 500 and status != 503 for status, _ in seen), seen
    codes = {code for status, code in seen if status == 503 and code}
    assert codes == {"database_unavailable"}, seen
    assert any(status == 503 for status, _ in seen) and any(status == 200 for status, _ in seen)
    assert outcomes[stranded_sig] == [503, 200]
    landed = {s for s in outcomes if chain.landed(s)}
    assert landed == set(outcomes)
    (await recorded(database.dsn)).exactly_once(landed)
