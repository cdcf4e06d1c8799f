"""The two servers under load, as child processes on 127.0.0.1.

Both are one uvicorn process each, with the settings `cedros-pay serve` uses (uvloop and
httptools chosen by uvicorn's `auto`, no access log, no `server` header, warning-level
logs). The Cedros Pay server reads bench/catalog.yaml, copied into a temporary directory
with a fresh SQLite file and an RPC URL nothing answers (the measured paths never call
Solana). Its working directory is that temporary directory, so no `.env` file is read,
and the config variables of the caller's environment are dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.errors import BenchError

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
          timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
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


def write_config(workdir: Path) -> Path:
    """bench/catalog.yaml with this run's database file and an RPC URL nobody serves."""
    raw = yaml.safe_load(CATALOG.read_text())
    raw["storage"]["file_path"] = str(workdir / "cedros-bench.db")
    raw["x402"]["rpc_url"] = f"http://{HOST}:{free_port()}"
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cedros_executable() -> str:
    beside = Path(sys.executable).parent / "cedros-pay"
    if beside.exists():
        return str(beside)
    found = shutil.which("cedros-pay")
    if found is None:
        raise BenchError("cedros-pay is not installed in this environment: run `make venv`")
    return found


@contextlib.contextmanager
def running_servers(workdir: Path, pin: list[str]) -> Iterator[dict[str, Server]]:
    """Both servers started and answering; stopped (SIGTERM, then SIGKILL) on exit."""
    config = write_config(workdir)
    cedros_port, base_port = free_port(), free_port()
    servers = {
        "cedros": Server(
            "cedros-pay", [*pin, cedros_executable(), "serve", "--config", str(config),
                           "--host", HOST, "--port", str(cedros_port)],
            cedros_port, "/cedros-health", workdir / "cedros.log"),
        "baseline": Server(
            "baseline", [*pin, sys.executable, "-m", "uvicorn", "bench.baseline:app",
                         "--app-dir", str(REPO_DIR), "--host", HOST, "--port", str(base_port),
                         "--no-access-log", "--no-server-header", "--no-proxy-headers",
                         "--log-level", "warning"],
            base_port, "/", workdir / "baseline.log"),
    }
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
