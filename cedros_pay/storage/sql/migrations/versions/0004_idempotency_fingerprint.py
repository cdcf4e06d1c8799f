"""Idempotency-Key responses remember the request they answered (issue 18).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`fingerprint` is the SHA-256 (hex) of the request's method, path, query, tenant and
canonical body: a key reused for another request is refused, never answered with the
first request's response. Rows written before this revision get "" (they match no
request, so a reuse after the upgrade is refused too). The DDL is spelled out, like
0001's, so later changes to `schema.define_tables` cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cedros_pay.storage.sql.migrations.ddl import names as _names
from cedros_pay.storage.sql.migrations.ddl import split as _split

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema, table = _split(_names().idempotency_keys)
    op.add_column(table, sa.Column("fingerprint", sa.Text(), nullable=False,
                                   server_default=""), schema=schema)


def downgrade() -> None:
    schema, table = _split(_names().idempotency_keys)
    op.drop_column(table, "fingerprint", schema=schema)
