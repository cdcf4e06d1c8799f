"""Pieces every SQL repository shares: the engine, the tables, dialect-aware inserts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from cedros_pay.storage.sql.schema import Tables


class SqlRepo:
    """Base for SQL repositories: one engine and table set shared by all of a store's repos."""

    def __init__(self, engine: AsyncEngine, tables: Tables) -> None:
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
