"""The SQL unit of work: the store's repositories bound to one transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from cedros_pay.storage.repos import UnitOfWork
from cedros_pay.storage.sql.base import InTransaction
from cedros_pay.storage.sql.carts import SqlCartQuotes
from cedros_pay.storage.sql.coupons import SqlCoupons
from cedros_pay.storage.sql.payments import SqlPayments
from cedros_pay.storage.sql.refunds import SqlRefundQuotes
from cedros_pay.storage.sql.schema import Tables
from cedros_pay.storage.sql.sessions import SqlStripeSessions
from cedros_pay.storage.sql.webhooks import SqlWebhookQueue


def sql_unit_of_work(
    engine: AsyncEngine, tables: Tables
) -> Callable[[], AbstractAsyncContextManager[UnitOfWork]]:
    """`Store.unit_of_work` for SQL: commit on a normal exit, roll back on any exception.

    SQLite takes one writer at a time, and its busy handler queues the others by sleeping
    (up to 100 ms a try) and retrying, so a newcomer often overtakes a long waiter: under 16
    concurrent payments a 3 ms transaction waited up to 1.6 s for its BEGIN. The process's
    units of work therefore queue here first, in arrival order and without holding a
    pooled connection; other processes still meet at SQLite's lock (busy_timeout).
    """
    writers = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        async with writers or contextlib.nullcontext(), engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # The sqlite3 driver would begin only at the first write and commit when
                # the outermost SAVEPOINT is released; an explicit BEGIN makes the block
                # one transaction, IMMEDIATE takes the write lock up front (busy_timeout
                # then queues writers) instead of failing a read-to-write upgrade.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.begin()
            bound = InTransaction(conn)
            try:
                yield UnitOfWork(
                    payments=SqlPayments(bound, tables), carts=SqlCartQuotes(bound, tables),
                    coupons=SqlCoupons(bound, tables), refunds=SqlRefundQuotes(bound, tables),
                    webhooks=SqlWebhookQueue(bound, tables),
                    sessions=SqlStripeSessions(bound, tables))
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()

    return unit_of_work
