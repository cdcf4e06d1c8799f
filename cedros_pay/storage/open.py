"""Open the Store a configuration asks for, migrated and ready."""

from __future__ import annotations

from cedros_pay.storage.sql.base import SqlEngine
from cedros_pay.storage.sql.engine import (
    PoolSettings,
    create_postgres_engine,
    create_sqlite_engine,
)
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.schema import TableNames
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store, memory_store


class UnsupportedBackend(Exception):
    pass


async def open_store(
    backend: str,
    *,
    file_path: str = "./data/cedros-pay.db",
    postgres_url: str = "",
    names: TableNames | None = None,
    pool: PoolSettings | None = None,
    migrate: bool = True,
) -> Store:
    """`migrate` runs Alembic's upgrade (idempotent, locked on PostgreSQL) before use."""
    if backend == "memory":
        return memory_store()
    engine: SqlEngine
    if backend == "sqlite":
        engine = create_sqlite_engine(file_path)
    elif backend == "postgres":
        engine = create_postgres_engine(postgres_url, pool)
    else:
        raise UnsupportedBackend(
            f"storage.backend {backend!r} is not available in this build; "
            "use memory, sqlite (file) or postgres")
    try:
        if migrate:
            await upgrade(engine, names)
    except BaseException:
        await engine.dispose()
        raise
    return sql_store(engine, names)
