"""`cedros-pay serve --workers 2`: two processes on one port behave as one server.

Each test connection is pinned to a known worker process (found from the kernel's socket
tables), so the assertions say which process answered: one replay ledger (the same
payment sent to both is granted once), one per-wallet rate limit (counted across both),
one delivery per webhook (both run the delivery worker; the rows are leased).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from e2e.test_x402_payments import CATALOG, payment_header
from support.process import clean_env, free_port, log_tail, terminate
from support.webhook_receiver import WebhookReceiver

from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WALLET_LIMIT = 4
PAYMENTS = 4

CONFIG = """
storage: {{backend: postgres, postgres_url: "{postgres_url}"}}
redis: {{url: "{redis_url}", key_prefix: "{prefix}"}}
rate_limit:
  global: {{limit: 100000, window: 1h}}
  per_ip: {{limit: 100000, window: 1h}}
  per_wallet: {{limit: {wallet_limit}, window: 1h}}
callbacks:
  payment_success_url: "{webhook_url}"
  timeout: 5s
  poll_interval: 100ms
logging: {{level: warn}}
"""


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


def _server_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the TCP connection from `client_port`."""
    want_local, want_remote = f"{server_port:04X}", f"{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if local == want_local and remote == want_remote:
            return fields[9]
    return None


def _owner(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


@dataclass
class Pinned:
    """An HTTP client whose one keep-alive connection is served by worker `pid`."""

    pid: int
    client: httpx.AsyncClient


async def _pin_one_per_worker(url: str, port: int, workers: list[int],
                              stack: AsyncExitStack) -> dict[int, Pinned]:
    pinned: dict[int, Pinned] = {}
    for _ in range(60):
        client = await stack.enter_async_context(httpx.AsyncClient(
            base_url=url, timeout=60,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)))
        resp = await client.get("/cedros-health")
        assert resp.status_code in (200, 503), resp.text
        stream = resp.extensions["network_stream"]
        client_port = stream.get_extra_info("client_addr")[1]
        inode = _server_inode(port, client_port)
        pid = _owner(workers, inode) if inode else None
        if pid is None or pid in pinned:
            await client.aclose()
            continue
        pinned[pid] = Pinned(pid, client)
        if len(pinned) == len(workers):
            return pinned
    raise AssertionError(f"connections reached only workers {sorted(pinned)} of {workers}")


def _serve(config: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", str(config),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=config.parent, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as sb:
        yield sb


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(600):
            assert proc.poll() is None, log_tail(log)
            try:
                if (await client.get(url + "/cedros-health")).status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start: " + log_tail(log))


async def _unsettled_webhooks(postgres_url: str) -> int:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM webhook_queue WHERE status IN ('pending', 'processing')")
        return count
    finally:
        await conn.close()


async def test_two_workers_share_replays_limits_and_webhook_deliveries(
        tmp_path: Path, sandbox: RunningSandbox, postgres_url: str, redis_url: str) -> None:
    receiver = WebhookReceiver().up()
    receiver.hang_for(0.3)  # each delivery stays in flight while the other worker polls
    config = tmp_path / "config.yaml"
    config.write_text(CATALOG + CONFIG.format(
        postgres_url=postgres_url, redis_url=redis_url, prefix=f"w{uuid.uuid4().hex[:8]}:",
        wallet_limit=WALLET_LIMIT, webhook_url=receiver.url))
    env = {k: v for k, v in clean_env().items() if not k.startswith(("CEDROS_", "X402_"))}
    env.update({
        "CEDROS_X402_NETWORK": "devnet", "CEDROS_X402_RPC_URL": sandbox.url,
        "CEDROS_X402_WS_URL": sandbox.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sandbox.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sandbox.devnet.usdc_mint),
    })
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _serve(config, port, env, log)
    try:
        await _wait_ready(url, proc, log)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        async with AsyncExitStack() as stack:
            a, b = (await _pin_one_per_worker(url, port, workers, stack)).values()

            # One replay ledger: each payment is sent to both workers at once, granted once.
            for i in range(PAYMENTS):
                tx = usdc_transfer(sandbox.devnet, 1_500_000 + i,
                                   blockhash=sandbox.chain.latest_block.blockhash)
                header = {"X-PAYMENT": payment_header(tx, "article")}
                results = await asyncio.gather(*(
                    pinned.client.post("/paywall/v1/verify", headers=header)
                    for pinned in (a, b) * 3))
                statuses = [r.status_code for r in results]
                assert statuses.count(200) == 1, [r.text for r in results]
                assert {r.json()["error"]["code"] for r in results
                        if r.status_code != 200} == {"payment_already_used"}

            # One per-wallet limit: alternate workers; the bucket is counted across both.
            wallet = {"X-Wallet": str(sandbox.wallets.payer.pubkey())}
            codes = [(await pinned.client.get("/paywall/v1/products", headers=wallet))
                     .status_code for pinned in (a, b) * WALLET_LIMIT]
            assert codes == [200] * WALLET_LIMIT + [429] * WALLET_LIMIT
            refused = await b.client.get("/paywall/v1/products", headers=wallet)
            assert refused.json()["error"]["details"]["limitType"] == "wallet"

        # One delivery per webhook: wait until every row is settled in the database (no
        # worker can claim it after that), then count what the merchant received.
        await receiver.arrived(PAYMENTS, within=30)
        for _ in range(300):
            if await _unsettled_webhooks(postgres_url) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _unsettled_webhooks(postgres_url) == 0
        got = receiver.snapshot()
        assert receiver.arrivals == PAYMENTS, [d.json() for d in got]
        assert len({d.json()["eventId"] for d in got}) == PAYMENTS
    finally:
        # Off the loop: the workers close their WebSockets to the sandbox served on it.
        await asyncio.to_thread(terminate, proc, first=signal.SIGTERM)
        receiver.down()
    assert proc.returncode == 0, log_tail(log)
    assert "Traceback" not in log.read_text()
