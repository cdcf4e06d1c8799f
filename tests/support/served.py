"""The payment e2e tests' server: a real `cedros-pay serve` process on SQLite or PostgreSQL,
paying through a sandbox chain that runs on the test's event loop behind real JSON-RPC.

One server per backend per test module is the intent (`served()` in a module-scoped
fixture, each test on its own resources or transactions), so the matrix costs a process
start per backend, not per test. The test reads what the server wrote through its own
connection to the same database (`Served.store`), never through the server's memory.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from cedros_pay.sandbox.testing import RunningSandbox
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import Store

from .process import ServeProcess, log_tail

if TYPE_CHECKING:
    from .postgres import PostgresServer

BACKENDS = ("sqlite", "postgres")

# Rate limits would refuse a test module's traffic from one loopback address; they have
# tests of their own.
_COMMON = """
rate_limit:
  global: {enabled: false}
  per_ip: {enabled: false}
  per_wallet: {enabled: false}
logging: {level: warn}
"""


def backend_of(request: pytest.FixtureRequest) -> tuple[str, PostgresServer | None]:
    """A fixture parametrised over BACKENDS: its backend, and the session's PostgreSQL
    server when that is the backend (started on first use)."""
    backend: str = request.param
    if backend != "postgres":
        return backend, None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return backend, server


def sandbox_env(sb: RunningSandbox, **extra: str) -> dict[str, str]:
    """The x402 settings that point a server at `sb` (merchant, mint, RPC and WebSocket)."""
    return {
        "CEDROS_X402_NETWORK": "devnet", "CEDROS_X402_RPC_URL": sb.url,
        "CEDROS_X402_WS_URL": sb.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint), **extra,
    }


@dataclass
class Served:
    backend: str
    process: ServeProcess
    client: httpx.AsyncClient  # base_url is the server's
    store: Store  # a second connection to the server's database

    @property
    def url(self) -> str:
        return self.process.url


def _storage_yaml(backend: str, workdir: Path, postgres_url: str, extra: str) -> str:
    more = f", {extra}" if extra else ""
    if backend == "sqlite":
        return f'storage: {{backend: sqlite, file_path: "{workdir / "cedros.db"}"{more}}}\n'
    return f'storage: {{backend: postgres, postgres_url: "{postgres_url}"{more}}}\n'


@asynccontextmanager
async def served(config_yaml: str, workdir: Path, backend: str, *,
                 env: Mapping[str, str], postgres: PostgresServer | None = None,
                 name: str = "serve", storage: str = "") -> AsyncIterator[Served]:
    """`cedros-pay serve` on `config_yaml` plus a storage section for `backend` (a fresh
    SQLite file in the existing `workdir`, or a fresh database on `postgres`), `env` added
    to its environment (see `sandbox_env`); `storage`: more YAML flow-mapping items for the
    storage section (`archival: {enabled: true}`). On exit the server must stop cleanly
    with no traceback in its log."""
    database = ""
    postgres_url = ""
    if backend == "postgres":
        if postgres is None:
            raise ValueError("the postgres backend needs the session's PostgreSQL server")
        database = f"t_{uuid.uuid4().hex[:8]}_{name}"[:63]
        postgres_url = postgres.create_database(database)
    config = workdir / f"{name}.yaml"
    config.write_text(config_yaml + _COMMON
                      + _storage_yaml(backend, workdir, postgres_url, storage))
    process = ServeProcess(config, workdir, name, env=dict(env))
    try:
        await process.wait_started()
        store = await open_store(backend, file_path=str(workdir / "cedros.db"),
                                 postgres_url=postgres_url, migrate=False)
        try:
            async with httpx.AsyncClient(base_url=process.url, timeout=60) as client:
                yield Served(backend, process, client, store)
        finally:
            await store.close()
    finally:
        code = await asyncio.to_thread(process.stop, signal.SIGTERM)
        if database and postgres is not None:
            postgres.drop_database(database)
    assert code == 0, log_tail(process.log)
    assert "Traceback" not in process.log.read_text(), log_tail(process.log, 80)
