"""Pieces every SQL repository shares: the engine, the tables, dialect-aware inserts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cedros_pay.storage.sql.inline_sqlite import InlineConnection, InlineEngine
from cedros_pay.storage.sql.schema import Tables

# PostgreSQL runs on asyncpg through SQLAlchemy's async engine; SQLite on the loop itself.
SqlEngine = AsyncEngine | InlineEngine
SqlConnection = AsyncConnection | InlineConnection


class Connectable(Protocol):
    """What a repository needs of an engine: a `SqlEngine`, or `InTransaction`."""

    @property
    def dialect(self) -> Dialect: ...
    def begin(self) -> AbstractAsyncContextManager[SqlConnection]: ...
    def connect(self) -> AbstractAsyncContextManager[SqlConnection]: ...


class InTransaction:
    """An engine stand-in that runs every statement of a repository on one open transaction.

    This is how a unit of work binds the ordinary repositories: their code is unchanged.
    Each `begin()` becomes a SAVEPOINT, so a repository that turns its own failure into a
    result (a duplicate key into `AlreadyExists`) leaves the transaction usable; PostgreSQL
    would otherwise refuse every later statement of an errored transaction.
    """

    def __init__(self, conn: SqlConnection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[SqlConnection]:
        async with self._conn.begin_nested():
            yield self._conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[SqlConnection]:
        yield self._conn


class SqlRepo:
    """Base for SQL repositories: one engine and table set shared by all of a store's repos."""

    def __init__(self, engine: Connectable, tables: Tables) -> None:
        self._engine = engine
        self._t = tables

    @property
    def _is_postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def _insert(self, table: Table) -> Any:
        """An INSERT that supports ON CONFLICT on both dialects."""
        if self._is_postgres:
            return postgresql.insert(table)
        return sqlite.insert(table)


def meta_out(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}
