"""Column types and table names as the revisions write them.

Shared by every revision under versions/, so these must never change meaning: a revision
is history, and a change here would rewrite what it created. A new type is a new function.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy.dialects import postgresql

from cedros_pay.storage.sql.schema import TableNames


def names() -> TableNames:
    """The table names `storage.schema_mapping` chose (configuration, not schema)."""
    found = context.config.attributes.get("table_names")
    return found if isinstance(found, TableNames) else TableNames()


def split(name: str) -> tuple[str | None, str]:
    """`schema.table` -> (schema or None, table)."""
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
