"""Open a SQL-backed Store on SQLite or PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from cedros_pay.storage.sql.base import SqlEngine
from cedros_pay.storage.sql.carts import SqlCartQuotes
from cedros_pay.storage.sql.coupons import SqlCoupons
from cedros_pay.storage.sql.idempotency import SqlIdempotency
from cedros_pay.storage.sql.nonces import SqlNonces
from cedros_pay.storage.sql.payments import PaymentStatements, SqlPayments
from cedros_pay.storage.sql.products import SqlProducts
from cedros_pay.storage.sql.refunds import SqlRefundQuotes
from cedros_pay.storage.sql.schema import TableNames, define_tables
from cedros_pay.storage.sql.sessions import SqlStripeSessions
from cedros_pay.storage.sql.subscriptions import SqlSubscriptions
from cedros_pay.storage.sql.uow import sql_unit_of_work
from cedros_pay.storage.sql.webhooks import SqlWebhookQueue
from cedros_pay.storage.store import Store


def sql_store(engine: SqlEngine, names: TableNames | None = None) -> Store:
    """Wrap an engine whose database is already migrated (see `migrations.upgrade`)."""
    tables = define_tables(names)
    statements = PaymentStatements.build(tables, engine.dialect)

    async def ping() -> bool:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    return Store(
        backend="postgres" if engine.dialect.name == "postgresql" else "sqlite",
        carts=SqlCartQuotes(engine, tables),
        refunds=SqlRefundQuotes(engine, tables),
        payments=SqlPayments(engine, tables, statements),
        nonces=SqlNonces(engine, tables),
        webhooks=SqlWebhookQueue(engine, tables),
        idempotency=SqlIdempotency(engine, tables),
        sessions=SqlStripeSessions(engine, tables),
        products=SqlProducts(engine, tables),
        coupons=SqlCoupons(engine, tables),
        subscriptions=SqlSubscriptions(engine, tables),
        unit_of_work=sql_unit_of_work(engine, tables, statements),
        close=engine.dispose,
        ping=ping,
    )
