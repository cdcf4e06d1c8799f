"""Process plumbing shared by the PostgreSQL and Redis harnesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

INSTALL_HINT = (
    "Run `bash .ci/run` (or `scripts/ensure-services.sh` as root), or install the Debian "
    "packages yourself: `apt-get install -y postgresql redis-server`."
)


class ServiceUnavailable(RuntimeError):
    """A backing service could not be found or started; the message says how to fix it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now.

    Drawn below the kernel's ephemeral range (32768-60999 on Linux), so an outgoing
    connection of another process (a killed server's half-closed socket, say) cannot hold
    it when our server binds. The port is released before the server binds it, so a race
    with another test is still possible; callers retry on "address in use".
    """
    for _ in range(200):
        port = secrets.randbelow(32768 - 20000) + 20000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free TCP port in 20000-32767")


def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    log: Path,
) -> None:
    """Poll `ready()` until it is true; fail early if `process` exits first."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if ready():
            return
        code = process.poll()
        if code is not None:
            raise ServiceUnavailable(
                f"{what} exited with status {code} before accepting connections.\n{log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"{what} did not accept connections within {timeout:.0f}s.\n{log_tail(log)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {log} ---\n{tail}"


def terminate(
    process: subprocess.Popen[bytes], *, first: signal.Signals, grace: float = 15.0
) -> None:
    """Send `first` (the server's clean-shutdown signal), then escalate to SIGKILL."""
    if process.poll() is not None:
        return
    for sig, wait in ((first, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    raise ServiceUnavailable(f"process {process.pid} survived SIGKILL")


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without libpq's PG* variables, which would redirect tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


# Runs in a separate Python process. It blocks reading a pipe from the test process: the
# word "disarm" means the server was stopped normally; EOF without it means the test process
# died (SIGTERM, SIGKILL, a crash), so the server would be orphaned. It then stops the server
# and deletes its directory.
_WATCHDOG = """
import os, shutil, signal, sys, time
message = sys.stdin.buffer.read()
if message == b"disarm":
    sys.exit(0)
pid, sig, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for current, grace in ((sig, 15.0), (signal.SIGKILL, 5.0)):
    try:
        os.kill(pid, current)
    except ProcessLookupError:
        break
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        continue
    break
shutil.rmtree(workdir, ignore_errors=True)
"""


class Watchdog:
    """Stops a server and removes its files if the test process dies without stopping it."""

    def __init__(self, pid: int, sig: signal.Signals, workdir: Path) -> None:
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, str(pid), str(int(sig)), str(workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a terminal Ctrl-C must not kill the watchdog before pytest's
            # own teardown runs.
            start_new_session=True,
        )

    def disarm(self) -> None:
        """The server is being stopped normally; let the watchdog exit. Idempotent."""
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(b"disarm")
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServeProcess:
    """A real `cedros-pay serve --config FILE` on a free loopback port, logging to a file
    in `workdir` (the tests that run several servers on one database use it)."""

    def __init__(self, config: Path, workdir: Path, name: str,
                 health_headers: dict[str, str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        """`env`: variables added to the process's environment (server wallets, say)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        self._health_headers = health_headers or {}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cedros_pay.cli", "serve", "--config", str(config),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=workdir, env=clean_env(**(env or {})), stdout=out,
                stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.url}/cedros-health", headers=self._health_headers,
                             timeout=1).status_code in (200, 503)
        except httpx.TransportError:
            return False

    def started(self) -> ServeProcess:
        wait_until(self.ready, process=self.process, timeout=60, what="cedros-pay serve",
                   log=self.log)
        return self

    async def wait_started(self, within: float = 60.0) -> ServeProcess:
        """`started()` without blocking the event loop, for a test whose sandbox chain
        (or webhook receiver) runs on that loop and must answer the server meanwhile."""
        import httpx

        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                try:
                    resp = await client.get(f"{self.url}/cedros-health",
                                            headers=self._health_headers)
                    if resp.status_code in (200, 503):
                        return self
                except httpx.TransportError:
                    pass
                code = self.process.poll()
                if code is not None:
                    raise ServiceUnavailable(f"cedros-pay serve exited with status {code} "
                                             f"before accepting connections.\n"
                                             f"{log_tail(self.log)}")
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"cedros-pay serve did not accept connections "
                                             f"within {within:.0f}s.\n{log_tail(self.log)}")
                await asyncio.sleep(0.05)

    def stop(self, sig: signal.Signals) -> int:
        terminate(self.process, first=sig)
        return self.process.returncode
