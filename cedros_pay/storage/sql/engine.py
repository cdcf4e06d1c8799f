"""Async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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


def sqlite_async_url(path: str) -> str:
    Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{Path(path).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout makes concurrent
    # writers (threads or other processes) wait for the lock instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_sqlite_engine(path: str) -> AsyncEngine:
    engine = create_async_engine(sqlite_async_url(path))
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_postgres_engine(url: str, pool: PoolSettings | None = None) -> AsyncEngine:
    p = pool or PoolSettings()
    idle = max(1, min(p.max_idle_conns, p.max_open_conns))
    return create_async_engine(
        postgres_async_url(url),
        pool_size=idle,
        max_overflow=max(0, p.max_open_conns - idle),
        pool_recycle=int(p.conn_max_lifetime.total_seconds()) or -1,
        pool_pre_ping=True,
    )
