"""Run the Alembic migrations programmatically (`cedros-pay migrate`, tests, start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from cedros_pay.storage.sql.base import SqlEngine
from cedros_pay.storage.sql.schema import TableNames

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every process migrating this database.
_ADVISORY_LOCK_KEY = 0x0CED_0502


def _alembic_config(conn: Connection, names: TableNames) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    cfg.attributes["table_names"] = names
    return cfg


async def upgrade(engine: SqlEngine, names: TableNames | None = None,
                  revision: str = "head") -> None:
    """Bring the database to `revision`; safe to call on every start.

    On PostgreSQL a transaction-scoped advisory lock makes servers that start together
    migrate one after the other instead of racing on CREATE TABLE.
    """
    resolved = names or TableNames()
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                               {"k": _ADVISORY_LOCK_KEY})
        await conn.run_sync(lambda c: command.upgrade(_alembic_config(c, resolved), revision))


async def current_revision(engine: SqlEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision())
