"""Engines: SQLite run on the event loop (`InlineEngine`) and PostgreSQL on asyncpg.

A PostgreSQL outage surfaces as `database_unavailable` (503, retryable) rather than as a
driver exception that would become a 500: a refused or failed connect, and a connection
that dies under a statement. The pool recovers by itself: `pool_pre_ping` replaces a dead
pooled connection at checkout (the ping's own failure is left to SQLAlchemy, which then
connects afresh), and a connection lost mid-statement is invalidated by SQLAlchemy before
the error propagates, so the next checkout connects anew once the server is back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import QueuePool, create_engine, event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.storage.sql.inline_sqlite import InlineEngine


@dataclass(frozen=True, slots=True)
class PoolSettings:
    max_open_conns: int = 25
    max_idle_conns: int = 5
    conn_max_lifetime: timedelta = timedelta(minutes=5)


def postgres_async_url(url: str) -> str:
    """Turn a libpq-style URL into SQLAlchemy's asyncpg form.

    asyncpg does not understand libpq's `sslmode`; `disable` is dropped and any other
    mode becomes asyncpg's `ssl=<mode>`.
    """
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    query = []
    for key, value in parse_qsl(parts.query):
        if key == "sslmode":
            if value != "disable":
                query.append(("ssl", value))
        else:
            query.append((key, value))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def sqlite_url(path: str) -> str:
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer. No busy timeout: SQLite's busy
    # handler would sleep on the event loop; InlineEngine retries asynchronously instead.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_sqlite_engine(path: str) -> InlineEngine:
    # Statements run on the loop's thread (see inline_sqlite), where a checkout must never
    # wait: the pool keeps a few connections and opens more rather than block.
    engine = create_engine(sqlite_url(path), poolclass=QueuePool, pool_size=5,
                           max_overflow=-1, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return InlineEngine(engine)


log = logging.getLogger("cedros_pay.storage")


def database_unavailable(cause: BaseException) -> CedrosError:
    """The client's error; the driver's own message goes to the log only."""
    log.warning("database unavailable", extra={"error": repr(cause)[:300]})
    return CedrosError(ErrorCode.DATABASE_UNAVAILABLE)


def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    # Any failure to open a connection (refused, reset, "the database system is starting
    # up", a timeout) means no database for now; asyncpg raises these unwrapped, so
    # SQLAlchemy's error events never see them.
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as exc:
        raise database_unavailable(exc) from exc


def _on_error(context: ExceptionContext) -> None:
    # The pre-ping's failure is how the pool learns to reconnect: leave it alone.
    if context.is_disconnect and not context.is_pre_ping:
        raise database_unavailable(context.original_exception)


def create_postgres_engine(url: str, pool: PoolSettings | None = None) -> AsyncEngine:
    p = pool or PoolSettings()
    idle = max(1, min(p.max_idle_conns, p.max_open_conns))
    engine = create_async_engine(
        postgres_async_url(url),
        pool_size=idle,
        max_overflow=max(0, p.max_open_conns - idle),
        pool_recycle=int(p.conn_max_lifetime.total_seconds()) or -1,
        pool_pre_ping=True,
    )
    event.listen(engine.sync_engine, "do_connect", _connect)
    event.listen(engine.sync_engine, "handle_error", _on_error)
    return engine
