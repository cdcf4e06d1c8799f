"""Cart claims: who is paying a cart right now, and until when.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

A payment claims its cart before its transaction is sent to the chain, so two different
transactions for one cart can never both be submitted (see `CartQuoteRepo.claim`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from cedros_pay.storage.sql.schema import TableNames

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _cart_quotes() -> tuple[str | None, str]:
    names = context.config.attributes.get("table_names")
    name = (names if isinstance(names, TableNames) else TableNames()).cart_quotes
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def upgrade() -> None:
    schema, table = _cart_quotes()
    op.add_column(table, sa.Column("claimed_by", sa.Text), schema=schema)
    op.add_column(table, sa.Column("claim_expires_at", sa.DateTime(timezone=True)),
                  schema=schema)


def downgrade() -> None:
    schema, table = _cart_quotes()
    op.drop_column(table, "claim_expires_at", schema=schema)
    op.drop_column(table, "claimed_by", schema=schema)
