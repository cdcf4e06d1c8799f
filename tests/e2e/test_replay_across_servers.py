"""Replay protection across two real server processes sharing one database and chain."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from e2e.test_serve import _free_port
from e2e.test_x402_payments import CATALOG, payment_header

from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]


async def _start(cfg: Path, port: int, env: dict[str, str],
                 log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cedros_pay.cli", "serve", "--config", str(cfg),
        "--host", "127.0.0.1", "--port", str(port), cwd=cfg.parent, env=env,
        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)


async def _wait_ready(client: httpx.AsyncClient, url: str, proc: asyncio.subprocess.Process,
                      log: Path) -> None:
    for _ in range(300):
        assert proc.returncode is None, _tail(log)
        try:
            if (await client.get(url + "/cedros-health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("server did not start: " + _tail(log))


@asynccontextmanager
async def two_servers(cfg: Path, sb: RunningSandbox, client: httpx.AsyncClient
                      ) -> AsyncIterator[list[str]]:
    """Two `cedros-pay serve` processes on `cfg` and the sandbox chain; their base urls."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEDROS_", "X402_"))}
    env.update({
        "CEDROS_X402_NETWORK": "devnet", "CEDROS_X402_RPC_URL": sb.url,
        "CEDROS_X402_WS_URL": sb.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint),
    })
    ports = [_free_port(), _free_port()]
    logs = [cfg.parent / f"server{i}.log" for i in range(2)]
    procs = [await _start(cfg, p, env, log) for p, log in zip(ports, logs, strict=True)]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for u, proc, log in zip(urls, procs, logs, strict=True):
            await _wait_ready(client, u, proc, log)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 20)
    for log in logs:
        assert "Traceback" not in log.read_text()


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]  # only on failure: blocking is fine here


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_one_transaction_settles_once_across_two_processes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        engine = create_postgres_engine(url)
        storage = f"storage:\n  backend: postgres\n  postgres_url: \"{url}\"\n"
    else:
        db = tmp_path / "shared.db"
        engine = create_sqlite_engine(str(db))
        storage = f"storage:\n  backend: sqlite\n  file_path: \"{db}\"\n"
    await upgrade(engine)
    await engine.dispose()
    async with running_devnet_sandbox() as sb:
        cfg = tmp_path / "cedros.yaml"
        cfg.write_text(CATALOG + storage + "logging:\n  level: warn\n")
        async with httpx.AsyncClient(timeout=60) as client, \
                two_servers(cfg, sb, client) as urls:
            tx = usdc_transfer(sb.devnet, 1_500_000, blockhash=sb.chain.latest_block.blockhash)
            header = payment_header(tx, "article")
            results = await asyncio.gather(*(
                client.post(u + "/paywall/v1/verify", headers={"X-PAYMENT": header})
                for u in urls * 10))
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == 1, [r.text for r in results if r.status_code != 402]
    codes = {r.json()["error"]["code"] for r in results if r.status_code != 200}
    assert codes == {"payment_already_used"}
