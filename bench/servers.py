"""The servers under load, as child processes on 127.0.0.1.

Each is one uvicorn process, with the settings `cedros-pay serve` uses (uvloop and
httptools chosen by uvicorn's `auto`, no access log, no `server` header, warning-level
logs). A Cedros Pay server reads bench/catalog.yaml, copied into a temporary directory
with a fresh SQLite file (seeded with `SEEDED_PAYMENTS` payments for the admin listing),
the bench's admin API key and an RPC URL nothing answers (the measured paths never call
Solana). Its working directory is that temporary directory, so no `.env` file is read,
and the config variables of the caller's environment are dropped. `cedros-nocache` is a
second such server with `graphql.result_cache` off; it runs only when a target needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.errors import BenchError
from bench.targets import ADMIN_API_KEY, SEEDED_PAYMENTS

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CATALOG = BENCH_DIR / "catalog.yaml"

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 20.0  # the server's own graceful budget is 15 s

# Variables the server's config loader reads (spec 09).
CONFIG_ENV_PREFIXES = ("CEDROS_", "X402_", "CALLBACK_", "COUPON_", "MONITORING_", "MONGODB_")
CONFIG_ENV_NAMES = ("POSTGRES_URL", "CORS_ALLOWED_ORIGINS")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def fetch(port: int, method: str, path: str, body: str = "",
          timeout: float = 10.0, extra: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        headers.update(extra or {})
        conn.request(method, path, body=body.encode() if body else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass(slots=True)
class Server:
    name: str
    argv: list[str]
    port: int
    ready_path: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self, cwd: Path, env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until the server answers any HTTP response (health may say `degraded`)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                fetch(self.port, "GET", self.ready_path, timeout=5.0)
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer within {timeout:.0f} s:\n"
                         f"{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise if the server has exited (a crash, or a signal from someone else)."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise BenchError(f"{self.name} {how} during the run:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join("    " + line for line in text[-lines:])
        return "    (no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


def server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(CONFIG_ENV_PREFIXES) and k not in CONFIG_ENV_NAMES}


def write_config(workdir: Path, name: str = "cedros", *, result_cache: bool = True) -> Path:
    """bench/catalog.yaml with this server's database file, the bench admin key, the
    GraphQL result cache setting and an RPC URL nobody serves."""
    raw = yaml.safe_load(CATALOG.read_text())
    raw["storage"]["file_path"] = str(workdir / f"{name}-bench.db")
    raw["x402"]["rpc_url"] = f"http://{HOST}:{free_port()}"
    raw["admin"] = {"api_keys": [ADMIN_API_KEY]}
    raw["graphql"] = {"result_cache": result_cache}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


async def seed(config_path: Path) -> None:
    """`SEEDED_PAYMENTS` recorded payments in the server's database (migrated on open)."""
    from cedros_pay.bootstrap.services import open_configured_store
    from cedros_pay.config import load_config
    from cedros_pay.core.models import PaymentTransaction

    store = await open_configured_store(load_config(config_path, environ={},
                                                    dotenv_path=None))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        await store.payments.record_many([
            PaymentTransaction(signature=f"bench-sig-{i:05d}",
                               resource_id=("demo-article", "demo-ebook")[i % 2],
                               wallet=f"BenchWa11et{i % 7}", amount_atomic=1_000_000 + i,
                               asset="USDC", created_at=start + timedelta(minutes=i),
                               metadata={"resource_type": "regular"})
            for i in range(SEEDED_PAYMENTS)])
    finally:
        await store.close()


def seed_payments(config_path: Path) -> None:
    asyncio.run(seed(config_path))


def cedros_executable() -> str:
    beside = Path(sys.executable).parent / "cedros-pay"
    if beside.exists():
        return str(beside)
    found = shutil.which("cedros-pay")
    if found is None:
        raise BenchError("cedros-pay is not installed in this environment: run `make venv`")
    return found


def cedros_server(workdir: Path, pin: list[str], name: str, *, result_cache: bool) -> Server:
    config = write_config(workdir, name, result_cache=result_cache)
    seed_payments(config)
    port = free_port()
    return Server(name, [*pin, cedros_executable(), "serve", "--config", str(config),
                         "--host", HOST, "--port", str(port)],
                  port, "/cedros-health", workdir / f"{name}.log")


@contextlib.contextmanager
def running_servers(workdir: Path, pin: list[str],
                    needed: Collection[str] = ("cedros", "baseline"),
                    ) -> Iterator[dict[str, Server]]:
    """The `needed` servers started and answering; stopped (SIGTERM, then SIGKILL) on
    exit. `cedros` and `baseline` always run."""
    base_port = free_port()
    servers = {
        "cedros": cedros_server(workdir, pin, "cedros", result_cache=True),
        "baseline": Server(
            "baseline", [*pin, sys.executable, "-m", "uvicorn", "bench.baseline:app",
                         "--app-dir", str(REPO_DIR), "--host", HOST, "--port", str(base_port),
                         "--no-access-log", "--no-server-header", "--no-proxy-headers",
                         "--log-level", "warning"],
            base_port, "/", workdir / "baseline.log"),
    }
    if "cedros-nocache" in needed:
        servers["cedros-nocache"] = cedros_server(workdir, pin, "cedros-nocache",
                                                  result_cache=False)
    env = server_env()
    try:
        for server in servers.values():
            server.start(workdir, env)
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
