"""A throwaway PostgreSQL server for tests.

`start_postgres()` runs `initdb` into a fresh temporary directory and starts `postgres` on a
free port on 127.0.0.1, tuned for speed instead of durability (fsync, synchronous commit and
full-page writes off). Every database operation goes through the `psql` binary from the same
installation, so the harness needs no Python driver of its own.

PostgreSQL refuses to run as root. When the tests run as root the server processes are started
with the uid/gid of the `postgres` system user (created if missing) through `subprocess`'s
`user=`/`group=` arguments. That has the effect of `runuser -u postgres --` while keeping the
postmaster our direct child, so shutdown is a signal we send ourselves rather than one relayed
by runuser.

When `CEDROS_TEST_POSTGRES_URL` is set, that server is used instead and nothing is started.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .process import (
    INSTALL_HINT,
    ServiceUnavailable,
    Watchdog,
    clean_env,
    free_port,
    terminate,
    wait_until,
)

ENV_URL = "CEDROS_TEST_POSTGRES_URL"
ENV_BINDIR = "CEDROS_TEST_POSTGRES_BINDIR"
ENV_TMPDIR = "CEDROS_TEST_TMPDIR"
SHM = "/dev/shm"
SHM_MIN_FREE = 1 << 30
OS_USER = "postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "cedros_test"
PG_ROOT = Path("/usr/lib/postgresql")

# Durability buys nothing in a database that is deleted at the end of the run.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def asyncpg_url(dsn: str) -> str:
    """`postgresql://…` -> `postgresql+asyncpg://…` (SQLAlchemy's async form)."""
    scheme, rest = dsn.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {dsn!r}")
    return f"postgresql+asyncpg://{rest}"


def plain_dsn(url: str) -> str:
    """`postgresql+asyncpg://…` -> `postgresql://…` (what libpq, psql and asyncpg.connect take)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def find_bindir() -> Path | None:
    """The newest PostgreSQL installation's bin directory, or None.

    Order: `$CEDROS_TEST_POSTGRES_BINDIR`, `/usr/lib/postgresql/<major>/bin` (Debian), then the
    directory of an `initdb` on PATH.
    """
    override = os.environ.get(ENV_BINDIR)
    if override:
        return Path(override)
    candidates: list[tuple[int, Path]] = []
    if PG_ROOT.is_dir():
        for entry in PG_ROOT.iterdir():
            bindir = entry / "bin"
            if entry.name.isdigit() and (bindir / "postgres").is_file():
                candidates.append((int(entry.name), bindir))
    if candidates:
        return max(candidates)[1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    return None


def _binary(bindir: Path, name: str) -> Path:
    path = bindir / name
    if not os.access(path, os.X_OK):
        raise ServiceUnavailable(f"PostgreSQL binary {path} is missing. {INSTALL_HINT}")
    return path


def _scratch_root() -> str | None:
    """Where the data directory goes: `$CEDROS_TEST_TMPDIR`, else a roomy /dev/shm, else $TMPDIR.

    On a disk-backed /tmp every CREATE DATABASE copies and flushes ~8 MB of files; measured
    on a 2-core VM, creating a database took ~370 ms there and ~30 ms on tmpfs, and the server
    started in 1.0 s instead of 2.7 s. Docker's default 64 MB /dev/shm is too small, so a
    tmpfs with less than 1 GiB free is passed over.
    """
    override = os.environ.get(ENV_TMPDIR)
    if override:
        return override
    try:
        stats = os.statvfs(SHM)
    except OSError:
        return None
    if os.access(SHM, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= SHM_MIN_FREE:
        return SHM
    return None


def _server_account() -> dict[str, Any]:
    """Popen keyword arguments that drop root to the `postgres` user (empty when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(OS_USER)
    except KeyError:
        _create_system_user(OS_USER)
        account = pwd.getpwnam(OS_USER)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _create_system_user(name: str) -> None:
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(
            f"PostgreSQL will not run as root and creating the {name!r} system user failed: "
            f"{result.stderr.strip()}"
        )


class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on.

    `url` / `dsn` point at the `cedros_test` database (or, for an external server, the
    database named in its URL).
    """

    def __init__(
        self,
        *,
        admin_dsn: str,
        psql: Path,
        database: str,
        process: subprocess.Popen[bytes] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.admin_dsn = admin_dsn
        self.psql = psql
        self.database = database
        self.process = process
        self.workdir = workdir
        self._watchdog = (
            Watchdog(process.pid, signal.SIGINT, workdir)
            if process is not None and workdir is not None
            else None
        )

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    @property
    def external(self) -> bool:
        return self.process is None

    def dsn_for(self, name: str) -> str:
        return with_database(self.admin_dsn, name)

    def url_for(self, name: str) -> str:
        return asyncpg_url(self.dsn_for(name))

    @functools.cached_property
    def version(self) -> int:
        """The server's `server_version_num`, e.g. 150018."""
        return int(self.execute("SHOW server_version_num"))

    def execute(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL through psql and return its unaligned, tuples-only output."""
        target = self.dsn_for(database) if database else self.admin_dsn
        result = subprocess.run(
            [
                str(self.psql),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                target,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            env=clean_env(PGCONNECT_TIMEOUT="10"),
            check=False,
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"psql failed on {sql!r}: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database `name` (optionally cloned from `template`); return its asyncpg URL.

        A template must have no open connections while it is copied.
        """
        sql = f'CREATE DATABASE "{_checked(name)}"'
        if template:
            sql += f' TEMPLATE "{_checked(template)}"'
        if self.version >= 150000:
            # PostgreSQL 15's default (WAL_LOG) writes the whole template through the WAL;
            # a file copy measured 1.5-2.5 times faster for the small databases tests make.
            sql += " STRATEGY FILE_COPY"
        self.execute(sql)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop `name`, disconnecting whoever still holds a connection to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')

    def stop(self) -> None:
        """Shut down a server we started and delete its files; idempotent.

        An external server is left alone.
        """
        atexit.unregister(self.stop)
        if self._watchdog is not None:
            self._watchdog.disarm()
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, then exit cleanly.
            terminate(self.process, first=signal.SIGINT)
        if self.workdir is not None:
            if self.workdir.exists():
                shutil.rmtree(self.workdir)
            self.workdir = None


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"database names here are [a-z_][a-z0-9_]{{0,62}}, got {name!r}")
    return name


def start_postgres(*, timeout: float = 60.0) -> PostgresServer:
    """Adopt `$CEDROS_TEST_POSTGRES_URL`, or launch a private server; see the module docstring."""
    external = os.environ.get(ENV_URL)
    if external:
        return _adopt(external)
    return _launch(timeout)


def _adopt(url: str) -> PostgresServer:
    bindir = find_bindir()
    psql = bindir / "psql" if bindir else None
    if psql is None or not psql.is_file():
        found = shutil.which("psql")
        psql = Path(found) if found else None
    if psql is None:
        raise ServiceUnavailable(
            f"{ENV_URL} is set but no `psql` binary was found to manage test databases. "
            "Install the postgresql-client package."
        )
    dsn = plain_dsn(url)
    database = urlsplit(dsn).path.lstrip("/") or SUPERUSER
    server = PostgresServer(admin_dsn=dsn, psql=psql, database=database)
    server.execute("SELECT 1")
    return server


def _launch(timeout: float) -> PostgresServer:
    bindir = find_bindir()
    if bindir is None:
        raise ServiceUnavailable(
            f"No PostgreSQL server binaries found (looked in {PG_ROOT}/*/bin and on PATH); "
            f"the PostgreSQL tests cannot run. {INSTALL_HINT}"
        )
    initdb, postgres, pg_isready, psql = (
        _binary(bindir, name) for name in ("initdb", "postgres", "pg_isready", "psql")
    )
    account = _server_account()
    workdir = Path(tempfile.mkdtemp(prefix="cedros-pg-", dir=_scratch_root()))
    if account:
        os.chown(workdir, account["user"], account["group"])
    # The server and its tools run with the temporary directory as cwd: the unprivileged
    # user may not be able to enter the caller's working directory.
    common: dict[str, Any] = {"cwd": workdir, "env": clean_env(LC_ALL="C"), **account}
    datadir = workdir / "data"
    log = workdir / "postgres.log"
    try:
        init = subprocess.run(
            [
                str(initdb),
                "-D",
                str(datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            **common,
        )
        if init.returncode != 0:
            raise ServiceUnavailable(
                f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}"
            )
        process, port = _start_postmaster(
            postgres, pg_isready, datadir, workdir, log, common, timeout
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    server = PostgresServer(
        admin_dsn=f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres",
        psql=psql,
        database=DEFAULT_DATABASE,
        process=process,
        workdir=workdir,
    )
    atexit.register(server.stop)
    try:
        server.create_database(DEFAULT_DATABASE)
    except BaseException:
        server.stop()
        raise
    return server


def _start_postmaster(
    postgres: Path,
    pg_isready: Path,
    datadir: Path,
    workdir: Path,
    log: Path,
    common: dict[str, Any],
    timeout: float,
) -> tuple[subprocess.Popen[bytes], int]:
    settings = [arg for key, value in SERVER_SETTINGS.items() for arg in ("-c", f"{key}={value}")]
    for attempt in range(3):
        port = free_port()
        log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as log_file:
            # A new session keeps a terminal Ctrl-C away from the server, so the fixture
            # finalizer decides when it stops.
            process = subprocess.Popen(
                [
                    str(postgres),
                    "-D",
                    str(datadir),
                    "-p",
                    str(port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    str(workdir),
                    *settings,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **common,
            )

        def accepting(port: int = port) -> bool:
            probe = subprocess.run(
                [
                    str(pg_isready),
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                    "-t",
                    "2",
                ],
                env=common["env"],
                check=False,
            )
            return probe.returncode == 0

        try:
            wait_until(accepting, process=process, timeout=timeout, what="postgres", log=log)
            return process, port
        except ServiceUnavailable:
            terminate(process, first=signal.SIGQUIT, grace=5.0)
            with log.open("rb") as log_file:
                log_file.seek(log_start)
                port_taken = b"could not bind" in log_file.read()
            if attempt == 2 or not port_taken:
                raise
            with contextlib.suppress(FileNotFoundError):
                (datadir / "postmaster.pid").unlink()
    raise AssertionError("unreachable")


__all__ = [
    "PostgresServer",
    "ServiceUnavailable",
    "asyncpg_url",
    "find_bindir",
    "plain_dsn",
    "start_postgres",
    "with_database",
]
