"""Webhook delivery and archival (issue 12): the queue remembers each item's event id;
archived payments move to `<payments>_archive`.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02

`event_id` is the payload's `eventId`, the key a merchant deduplicates on; the admin API
lists it and finds an event's deliveries by it. While revision 0001 still builds its
tables from `schema.define_tables` (which has the column), a database created by it
already has the column, its index and the archive table, so each is added only when
missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from cedros_pay.storage.sql.schema import TableNames, define_tables

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def _names() -> TableNames:
    names = context.config.attributes.get("table_names")
    return names if isinstance(names, TableNames) else TableNames()


def _table() -> tuple[str | None, str]:
    schema, _, base = _names().webhook_queue.rpartition(".")
    return schema or None, base


def upgrade() -> None:
    schema, base = _table()
    inspector = sa.inspect(op.get_bind())
    if "event_id" not in {c["name"] for c in inspector.get_columns(base, schema=schema)}:
        op.add_column(base, sa.Column("event_id", sa.Text(), nullable=True), schema=schema)
    index = f"idx_{base}_tenant_id_event_id"
    if index not in {i["name"] for i in inspector.get_indexes(base, schema=schema)}:
        op.create_index(index, base, ["tenant_id", "event_id"], schema=schema)
    # The archive as it stands in this revision (checkfirst: 0001 may have made it).
    archive = define_tables(_names()).payments_archive
    archive.create(op.get_bind(), checkfirst=True)
    for idx in archive.indexes:
        idx.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    define_tables(_names()).payments_archive.drop(op.get_bind(), checkfirst=True)
    schema, base = _table()
    op.drop_index(f"idx_{base}_tenant_id_event_id", table_name=base, schema=schema)
    op.drop_column(base, "event_id", schema=schema)
