"""The SQL unit of work: the store's repositories bound to one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from cedros_pay.storage.repos import UnitOfWork
from cedros_pay.storage.sql.base import InTransaction, SqlEngine
from cedros_pay.storage.sql.carts import SqlCartQuotes
from cedros_pay.storage.sql.coupons import SqlCoupons
from cedros_pay.storage.sql.payments import PaymentStatements, SqlPayments
from cedros_pay.storage.sql.refunds import SqlRefundQuotes
from cedros_pay.storage.sql.schema import Tables
from cedros_pay.storage.sql.sessions import SqlStripeSessions
from cedros_pay.storage.sql.webhooks import SqlWebhookQueue


def sql_unit_of_work(
    engine: SqlEngine, tables: Tables, statements: PaymentStatements | None = None
) -> Callable[[], AbstractAsyncContextManager[UnitOfWork]]:
    """`Store.unit_of_work` for SQL: commit on a normal exit, roll back on any exception.

    The engine's `begin()` is the whole transaction; on SQLite it also queues this
    process's writers and takes the write lock up front (`InlineEngine.begin`).
    """

    statements = statements or PaymentStatements.build(tables, engine.dialect)

    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        async with engine.begin() as conn:
            bound = InTransaction(conn)
            yield UnitOfWork(
                payments=SqlPayments(bound, tables, statements), carts=SqlCartQuotes(bound, tables),
                coupons=SqlCoupons(bound, tables), refunds=SqlRefundQuotes(bound, tables),
                webhooks=SqlWebhookQueue(bound, tables),
                sessions=SqlStripeSessions(bound, tables))

    return unit_of_work
