"""SQLite run on the event loop's own thread, behind the async engine API the repositories use.

A SQLite statement on a local file takes microseconds; aiosqlite's hop to its worker
thread and back (a queue, a future, a loop wake-up, the GIL changing hands) costs several
times that for every execute, fetch and cursor close. Measured in this process: a unit of
work of one insert and one read cost 1.37 ms of CPU through aiosqlite and 0.15 ms run
here (bench/RESULTS.md, "SQLite on the loop"). So the statements run inline, and the one
thing that could stall the loop, waiting for another process's write lock, is never done
on it:

- a write transaction (`begin()`) first queues behind this process's other writers on an
  `asyncio.Lock`, in arrival order and without holding a connection, then takes SQLite's
  write lock up front with `BEGIN IMMEDIATE`, so no statement inside it meets a lock;
- the busy timeout is 0: when another process holds the lock, BEGIN fails at once and is
  retried after an asynchronous sleep (up to `lock_wait`), the loop serving others meanwhile;
- a statement outside any transaction (a plain read) that meets a transient lock is
  retried the same way.

The price: a long statement (a report over a large table) holds the loop while it runs.
The repositories' statements are indexed lookups and small writes; PostgreSQL is the
backend for large ledgers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Dialect, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.base import Executable

_T = TypeVar("_T")

_BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(exc: BaseException) -> bool:
    """Another connection holds the lock this statement needs."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    return isinstance(orig, sqlite3.OperationalError) and orig.sqlite_errorcode in _BUSY


class InlineConnection:
    """The subset of `AsyncConnection` the repositories use, run synchronously."""

    def __init__(self, engine: InlineEngine, sync: Connection) -> None:
        self._engine = engine
        self.sync_connection = sync

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    def _in_transaction(self) -> bool:
        # The sqlite3 handle's own state: SQLAlchemy's "autobegin" says True for reads
        # that SQLite runs in autocommit.
        driver = self.sync_connection.connection.driver_connection
        return bool(getattr(driver, "in_transaction", True))

    async def execute(self, statement: Executable,
                      parameters: Any = None) -> CursorResult[Any]:
        run = self.sync_connection.execute
        if self._in_transaction():
            return run(statement, parameters)
        return await self._engine.retry_busy(lambda: run(statement, parameters))

    async def run_sync(self, fn: Callable[[Connection], _T]) -> _T:
        return fn(self.sync_connection)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[InlineConnection]:
        with self.sync_connection.begin_nested():
            yield self


class InlineEngine:
    """An engine whose `connect()`/`begin()` mirror `AsyncEngine`'s, for SQLite only."""

    def __init__(self, sync_engine: Engine, *, lock_wait: float = 30.0) -> None:
        self.sync_engine = sync_engine
        self._lock_wait = lock_wait
        self._writers = asyncio.Lock()

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    async def retry_busy(self, attempt: Callable[[], _T]) -> _T:
        """`attempt()`, tried again after a growing asynchronous pause while another
        process holds the lock; gives up with the lock error after `lock_wait`."""
        deadline = time.monotonic() + self._lock_wait
        pause = 0.001
        while True:
            try:
                return attempt()
            except (OperationalError, sqlite3.OperationalError) as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[InlineConnection]:
        conn = await self.retry_busy(self.sync_engine.connect)
        try:
            yield InlineConnection(self, conn)
        finally:
            conn.close()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        """One write transaction: committed on a normal exit, rolled back on any exception."""
        async with self._writers:
            conn = await self.retry_busy(self.sync_engine.connect)
            try:
                await self.retry_busy(lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"))
                yield InlineConnection(self, conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                conn.close()

    async def dispose(self) -> None:
        self.sync_engine.dispose()
