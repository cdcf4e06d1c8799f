"""Webhook delivery and archival (issue 12): the queue remembers each item's event id;
archived payments move to `<payments>_archive`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

`event_id` is the payload's `eventId`, the key a merchant deduplicates on; the admin API
lists it and finds an event's deliveries by it. The DDL is spelled out, like 0001's, so
later changes to `schema.define_tables` cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cedros_pay.storage.sql.migrations.ddl import json as _json
from cedros_pay.storage.sql.migrations.ddl import names as _names
from cedros_pay.storage.sql.migrations.ddl import split as _split
from cedros_pay.storage.sql.migrations.ddl import timestamp as _ts

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    n = _names()
    schema, queue = _split(n.webhook_queue)
    op.add_column(queue, sa.Column("event_id", sa.Text()), schema=schema)
    op.create_index(f"idx_{queue}_tenant_id_event_id", queue, ["tenant_id", "event_id"],
                    schema=schema)
    schema, payments = _split(n.payments)
    archive = f"{payments}_archive"
    op.create_table(
        archive,
        sa.Column("signature", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False, server_default="default"),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("wallet", sa.Text, nullable=False, server_default=""),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("amount_asset", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("metadata", _json()),
        sa.Column("archived_at", _ts(), nullable=False),
        schema=schema,
    )
    op.create_index(f"idx_{archive}_tenant_id_created_at", archive,
                    ["tenant_id", "created_at"], schema=schema)


def downgrade() -> None:
    n = _names()
    schema, payments = _split(n.payments)
    op.drop_table(f"{payments}_archive", schema=schema)
    schema, queue = _split(n.webhook_queue)
    op.drop_index(f"idx_{queue}_tenant_id_event_id", table_name=queue, schema=schema)
    op.drop_column(queue, "event_id", schema=schema)
