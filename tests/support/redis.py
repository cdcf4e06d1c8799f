"""A throwaway Redis server for tests.

`start_redis()` starts `redis-server` on a free port on 127.0.0.1 with persistence off and its
files in a temporary directory. When `CEDROS_TEST_REDIS_URL` is set, that server is used
instead and nothing is started.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .process import (
    INSTALL_HINT,
    ServiceUnavailable,
    Watchdog,
    clean_env,
    free_port,
    terminate,
    wait_until,
)

ENV_URL = "CEDROS_TEST_REDIS_URL"
FALLBACK_BINARY = Path("/usr/bin/redis-server")


class RedisServer:
    """A Redis server; `url` is `redis://127.0.0.1:PORT/0` for one we started."""

    def __init__(
        self,
        *,
        url: str,
        process: subprocess.Popen[bytes] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.url = url
        self.process = process
        self.workdir = workdir
        self._watchdog = (
            Watchdog(process.pid, signal.SIGTERM, workdir)
            if process is not None and workdir is not None
            else None
        )

    @property
    def external(self) -> bool:
        return self.process is None

    def stop(self) -> None:
        """Shut down a server we started and delete its files; idempotent.

        An external server is left alone.
        """
        atexit.unregister(self.stop)
        if self._watchdog is not None:
            self._watchdog.disarm()
        if self.process is not None:
            # SIGTERM is Redis's clean shutdown (no save: persistence is off).
            terminate(self.process, first=signal.SIGTERM)
        if self.workdir is not None:
            if self.workdir.exists():
                shutil.rmtree(self.workdir)
            self.workdir = None


def find_binary() -> Path | None:
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    return FALLBACK_BINARY if os.access(FALLBACK_BINARY, os.X_OK) else None


def ping(host: str, port: int) -> bool:
    """True when a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(*, timeout: float = 30.0) -> RedisServer:
    """Adopt `$CEDROS_TEST_REDIS_URL`, or launch a private server."""
    external = os.environ.get(ENV_URL)
    if external:
        parts = urlsplit(external)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 5).close()
        except OSError as exc:
            raise ServiceUnavailable(f"{ENV_URL}={external} is unreachable: {exc}") from exc
        return RedisServer(url=external)

    binary = find_binary()
    if binary is None:
        raise ServiceUnavailable(
            f"No `redis-server` binary found (PATH or {FALLBACK_BINARY}); the Redis tests "
            f"cannot run. {INSTALL_HINT}"
        )
    workdir = Path(tempfile.mkdtemp(prefix="cedros-redis-"))
    log = workdir / "redis.log"
    try:
        process, port = _start(binary, workdir, log, timeout)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", process=process, workdir=workdir)
    atexit.register(server.stop)
    return server


def _start(
    binary: Path, workdir: Path, log: Path, timeout: float
) -> tuple[subprocess.Popen[bytes], int]:
    for attempt in range(3):
        port = free_port()
        log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    str(binary),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(workdir),
                    "--daemonize",
                    "no",
                    "--logfile",
                    "",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=clean_env(),
                start_new_session=True,
            )
        try:
            wait_until(
                functools.partial(ping, "127.0.0.1", port),
                process=process,
                timeout=timeout,
                what="redis-server",
                log=log,
            )
            return process, port
        except ServiceUnavailable:
            terminate(process, first=signal.SIGTERM, grace=5.0)
            with log.open("rb") as log_file:
                log_file.seek(log_start)
                port_taken = b"Address already in use" in log_file.read()
            if attempt == 2 or not port_taken:
                raise
    raise AssertionError("unreachable")


__all__ = ["RedisServer", "ServiceUnavailable", "find_binary", "ping", "start_redis"]
