"""What the fault tests share: a sandbox chain in its own thread (so a test may block on a
server process without starving the chain), a `cedros-pay serve` configured for it, real
payments, a private PostgreSQL server that may be stopped and started again on its port,
and the database's view of what was recorded."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from solders.signature import Signature
from support import postgres as pg
from support.process import ServeProcess, Watchdog, clean_env, log_tail, terminate, wait_until

from cedros_pay.sandbox.faults import Faults
from cedros_pay.sandbox.network import DevnetSandbox, build_devnet_sandbox
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.server import SandboxServer
from cedros_pay.sandbox.testing import usdc_transfer

PRICE = 1_500_000
CONFIG = """
server:
  request_timeout: {request_timeout}
x402:
  network: devnet
  payment_address: "{merchant}"
  token_mint: "{mint}"
  rpc_url: "{rpc_url}"
  ws_url: "{ws_url}"
paywall:
  product_source: yaml
  resources:
    article: {{description: An article, crypto_atomic_amount: {price}, crypto_token: USDC}}
coupons: {{coupon_source: disabled}}
callbacks:
  payment_success_url: "http://127.0.0.1:9/hook"
  timeout: 1s
rate_limit:
  global: {{enabled: false}}
  per_ip: {{enabled: false}}
  per_wallet: {{enabled: false}}
circuit_breaker:
  solana_rpc: {{timeout: {breaker_timeout}, consecutive_failures: 5}}
logging: {{level: warn}}
{storage}
"""


@dataclass
class Chain:
    """The sandbox chain served from a thread; `faults` are its switches."""

    devnet: DevnetSandbox
    server: SandboxServer
    _amounts: Iterator[int] = field(default_factory=lambda: iter(range(PRICE, PRICE + 10**6)))

    @property
    def faults(self) -> Faults:
        return self.server.faults

    def payment(self) -> tuple[str, str]:
        """A fresh signed transfer for `article`: (signature, X-PAYMENT header). Each pays
        a different amount (at least the price), so no two share their bytes."""
        tx = usdc_transfer(self.devnet, next(self._amounts),
                           blockhash=self.devnet.chain.latest_block.blockhash)
        return str(tx.signatures[0]), v0_payment_header(tx, "article")

    def landed(self, signature: str) -> bool:
        return self.devnet.chain.transaction(Signature.from_string(signature)) is not None


@contextmanager
def sandbox_chain() -> Iterator[Chain]:
    devnet = build_devnet_sandbox()
    server = SandboxServer(devnet.chain)
    server.start_in_thread()
    try:
        yield Chain(devnet, server)
    finally:
        server.faults.release()
        server.stop_thread()


def write_config(path: Path, chain: Chain, storage: str, *, request_timeout: str = "60s",
                 breaker_timeout: str = "30s") -> Path:
    w = chain.devnet.wallets
    path.write_text(CONFIG.format(
        request_timeout=request_timeout, merchant=w.merchant.pubkey(),
        mint=chain.devnet.usdc_mint, rpc_url=chain.server.url, ws_url=chain.server.ws_url,
        price=PRICE, breaker_timeout=breaker_timeout, storage=storage))
    return path


def postgres_storage(url: str) -> str:
    return f'storage: {{backend: postgres, postgres_url: "{url}"}}'


def sqlite_storage(path: Path) -> str:
    return f'storage: {{backend: sqlite, file_path: "{path}"}}'


async def started(server: ServeProcess) -> ServeProcess:
    return await asyncio.to_thread(server.started)


def assert_clean_log(server: ServeProcess) -> None:
    text = server.log.read_text()
    assert "Traceback" not in text, log_tail(server.log, 60)


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The spec 15 error of a failed answer (asserting it is one, and no stack trace)."""
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    error: dict[str, Any] = body["error"]
    assert set(error) >= {"code", "message", "retryable", "details"}, body
    return error


# --- the database's view ------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    payments: dict[str, int]  # signature -> rows (the primary key says at most 1)
    events: dict[str, int]  # signature -> payment.succeeded events queued

    def exactly_once(self, signatures: set[str]) -> None:
        assert set(self.payments) == signatures, (set(self.payments) ^ signatures)
        assert all(n == 1 for n in self.payments.values())
        assert self.events == {s: 1 for s in signatures}, self.events


async def recorded(dsn: str) -> Recorded:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT signature, count(*) AS n FROM payment_transactions "
                                "GROUP BY signature")
        events = await conn.fetch(
            "SELECT payload::jsonb ->> 'proofSignature' AS signature, count(*) AS n "
            "FROM webhook_queue WHERE event_type = 'payment.succeeded' GROUP BY 1")
    finally:
        await conn.close()
    return Recorded({r["signature"]: r["n"] for r in rows},
                    {r["signature"]: r["n"] for r in events})


# --- a PostgreSQL server of the test's own -------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL server for one test (never `$CEDROS_TEST_POSTGRES_URL`'s), so stopping
    it touches no other test. `stop()` is a fast shutdown that keeps the data directory;
    `start()` brings the postmaster back on the same port."""

    def __init__(self) -> None:
        self.server = pg._launch(60.0)
        self.url = self.server.url
        self.dsn = self.server.dsn
        bindir = pg.find_bindir()
        assert bindir is not None and self.server.workdir is not None
        self._bindir = bindir
        self._workdir = self.server.workdir
        self.port = int(self.server.admin_dsn.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def running(self) -> bool:
        process = self.server.process
        return process is not None and process.poll() is None

    def stop(self) -> None:
        """SIGINT: PostgreSQL's fast shutdown, which cuts every client connection."""
        process = self.server.process
        assert process is not None
        terminate(process, first=signal.SIGINT)

    def start(self) -> None:
        common: dict[str, Any] = {"cwd": self._workdir, "env": clean_env(LC_ALL="C"),
                                  **pg._server_account()}
        settings = [a for k, v in pg.SERVER_SETTINGS.items() for a in ("-c", f"{k}={v}")]
        log = self._workdir / "postgres.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(self._bindir / "postgres"), "-D", str(self._workdir / "data"),
                 "-p", str(self.port), "-h", "127.0.0.1", "-k", str(self._workdir), *settings],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, **common)

        def accepting() -> bool:
            return subprocess.run(
                [str(self._bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                 str(self.port), "-U", pg.SUPERUSER, "-t", "2"],
                env=common["env"], check=False).returncode == 0

        wait_until(accepting, process=process, timeout=60, what="postgres (restarted)", log=log)
        old = self.server._watchdog
        if old is not None:
            old.disarm()
        self.server.process = process
        self.server._watchdog = Watchdog(process.pid, signal.SIGINT, self._workdir)

    def close(self) -> None:
        self.server.stop()


def recorded_sqlite(path: Path) -> Recorded:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT signature, count(*) FROM payment_transactions "
                            "GROUP BY signature").fetchall()
        events = conn.execute(
            "SELECT json_extract(payload, '$.proofSignature'), count(*) FROM webhook_queue "
            "WHERE event_type = 'payment.succeeded' GROUP BY 1").fetchall()
    return Recorded(dict(rows), dict(events))
