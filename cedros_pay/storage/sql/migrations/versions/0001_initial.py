"""The initial schema: spec 08's nine tables plus idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

This revision builds the tables from `schema.define_tables`, so the two cannot drift while
it is the only revision (tests/contract/test_migrations.py checks they match). The first
change to the schema must therefore freeze this file (inline its DDL as it stands) before
adding revision 0002 with the change.
"""

from __future__ import annotations

from alembic import context, op

from cedros_pay.storage.sql.schema import TableNames, define_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _names() -> TableNames:
    names = context.config.attributes.get("table_names")
    return names if isinstance(names, TableNames) else TableNames()


def upgrade() -> None:
    define_tables(_names()).metadata.create_all(op.get_bind())


def downgrade() -> None:
    define_tables(_names()).metadata.drop_all(op.get_bind())
