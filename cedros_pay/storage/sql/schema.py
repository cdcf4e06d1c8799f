"""The SQL schema of spec 08, with table names taken from `storage.schema_mapping`.

Tables are SQLAlchemy Core objects built per store (not module globals) because their
names come from configuration. Differences from the spec, all deliberate:

* every table carries `tenant_id` (DESIGN §3), and products / coupons are keyed by
  `(tenant_id, id)` so two tenants may use the same product id; payment signatures stay
  globally unique because replay protection is global (spec 13);
* times are `TIMESTAMP WITH TIME ZONE` on PostgreSQL (UTC strings on SQLite);
* the webhook payload is TEXT, so the bytes a receiver verifies are the bytes we queued;
* `idempotency_keys` persists spec 10's idempotency cache for multi-instance setups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_table_name(name: str) -> str:
    """Accept `table` or `schema.table` made only of identifier characters.

    Table names come from configuration and end up in DDL, so anything that could carry
    SQL is refused here even though the config loader checks it too.
    """
    parts = name.split(".")
    if len(parts) > 2 or not all(_SAFE_NAME.match(p) for p in parts):
        raise ValueError(f"unsafe table name: {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class TableNames:
    payments: str = "payment_transactions"
    sessions: str = "stripe_sessions"
    products: str = "products"
    coupons: str = "coupons"
    cart_quotes: str = "cart_quotes"
    refund_quotes: str = "refund_quotes"
    admin_nonces: str = "admin_nonces"
    webhook_queue: str = "webhook_queue"
    subscriptions: str = "subscriptions"
    idempotency_keys: str = "idempotency_keys"

    def __post_init__(self) -> None:
        for f in fields(self):
            check_table_name(getattr(self, f.name))

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on both dialects (SQLite has no timezone type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> Any:
    return JSON().with_variant(JSONB(), "postgresql")


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return (schema or None), table


@dataclass(frozen=True, slots=True)
class Tables:
    metadata: MetaData
    payments: Table
    payments_archive: Table  # `<payments>_archive`: rows moved out by archival (spec 11)
    sessions: Table
    products: Table
    coupons: Table
    cart_quotes: Table
    refund_quotes: Table
    admin_nonces: Table
    webhook_queue: Table
    subscriptions: Table
    idempotency_keys: Table


def _table(md: MetaData, name: str, *cols: Any, index: list[tuple[str, ...]] | None = None,
           **kw: Any) -> Table:
    schema, base = _split(name)
    table = Table(base, md, *cols, schema=schema, **kw)
    for idx_cols in index or []:
        Index(f"idx_{base}_{'_'.join(idx_cols)}", *(table.c[c] for c in idx_cols))
    return table


def _payment_columns() -> list[Column[Any]]:
    """A payment row: the hot ledger and its archive hold the same columns."""
    return [
        Column("signature", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("resource_id", Text, nullable=False),
        Column("wallet", Text, nullable=False, server_default=""),
        Column("amount", BigInteger, nullable=False),
        Column("amount_asset", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("metadata", json_type()),
    ]


def define_tables(names: TableNames | None = None) -> Tables:
    """Build the tables of spec 08 (plus idempotency keys) on a fresh MetaData."""
    n = names or TableNames()
    md = MetaData()
    ts = UtcDateTime
    payments = _table(
        md, n.payments, *_payment_columns(),
        index=[("tenant_id",), ("tenant_id", "resource_id"), ("tenant_id", "wallet"),
               ("tenant_id", "created_at")],
    )
    # Revision 0003. Archived signatures stay used: the ledger checks this table too.
    payments_archive = _table(
        md, f"{n.payments}_archive", *_payment_columns(),
        Column("archived_at", ts, nullable=False),
        index=[("tenant_id", "created_at")],
    )
    sessions = _table(
        md, n.sessions,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("resource_id", Text),
        Column("status", Text, nullable=False),
        Column("amount_cents", BigInteger),
        Column("currency", Text),
        Column("customer_email", Text),
        Column("metadata", json_type()),
        Column("created_at", ts, nullable=False),
        Column("completed_at", ts),
        index=[("tenant_id", "resource_id"), ("tenant_id", "status")],
    )
    products = _table(
        md, n.products,
        Column("id", Text, nullable=False),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("description", Text),
        Column("fiat_amount", BigInteger),
        Column("fiat_currency", Text),
        Column("stripe_price_id", Text),
        Column("crypto_amount", BigInteger),
        Column("crypto_token", Text),
        Column("crypto_account", Text),
        Column("memo_template", Text),
        Column("metadata", json_type()),
        Column("active", Boolean, nullable=False),
        Column("subscription_config", json_type()),
        Column("created_at", ts),
        Column("updated_at", ts),
        PrimaryKeyConstraint("tenant_id", "id"),
        index=[("tenant_id", "active"), ("tenant_id", "stripe_price_id")],
    )
    coupons = _table(
        md, n.coupons,
        Column("code", Text, nullable=False),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("discount_type", Text, nullable=False),
        Column("discount_value", Double, nullable=False),
        Column("currency", Text),
        Column("scope", Text),
        Column("product_ids", json_type()),
        Column("payment_method", Text),
        Column("auto_apply", Boolean, nullable=False),
        Column("applies_at", Text),
        Column("usage_limit", Integer),
        Column("usage_count", Integer, nullable=False, server_default="0"),
        Column("starts_at", ts),
        Column("expires_at", ts),
        Column("active", Boolean, nullable=False),
        Column("metadata", json_type()),
        Column("created_at", ts),
        Column("updated_at", ts),
        PrimaryKeyConstraint("tenant_id", "code"),
        index=[("tenant_id", "active"), ("tenant_id", "auto_apply"), ("expires_at",)],
    )
    cart_quotes = _table(
        md, n.cart_quotes,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("items", json_type(), nullable=False),
        Column("total_amount", BigInteger, nullable=False),
        Column("total_asset", Text, nullable=False),
        Column("metadata", json_type()),
        Column("created_at", ts, nullable=False),
        Column("expires_at", ts, nullable=False),
        Column("wallet_paid_by", Text),
        # The payment holding the cart until its transaction lands or fails (revision 0002).
        Column("claimed_by", Text),
        Column("claim_expires_at", ts),
        index=[("tenant_id",), ("tenant_id", "expires_at")],
    )
    refund_quotes = _table(
        md, n.refund_quotes,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("original_purchase_id", Text, nullable=False),
        Column("recipient_wallet", Text, nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("amount_asset", Text, nullable=False),
        Column("token", Text),
        Column("token_mint", Text),
        Column("token_decimals", SmallInteger),
        Column("status", Text, nullable=False, server_default="pending"),
        Column("processed_by", Text),
        Column("processed_at", ts),
        Column("signature", Text),
        Column("reason", Text),
        Column("metadata", json_type()),
        Column("created_at", ts, nullable=False),
        Column("expires_at", ts, nullable=False),
        index=[("tenant_id",), ("tenant_id", "expires_at"), ("tenant_id", "original_purchase_id")],
    )
    admin_nonces = _table(
        md, n.admin_nonces,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("purpose", Text, nullable=False),
        Column("created_at", ts, nullable=False),
        Column("expires_at", ts, nullable=False),
        Column("consumed_at", ts),
        index=[("tenant_id",), ("tenant_id", "expires_at")],
    )
    webhook_queue = _table(
        md, n.webhook_queue,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("url", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", json_type()),
        Column("event_type", Text, nullable=False),
        Column("event_id", Text),  # revision 0003
        Column("status", Text, nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("max_attempts", Integer, nullable=False),
        Column("last_error", Text),
        Column("last_attempt_at", ts),
        Column("next_attempt_at", ts),
        Column("created_at", ts, nullable=False),
        Column("completed_at", ts),
        index=[("status", "next_attempt_at"), ("created_at",), ("completed_at",),
               ("tenant_id", "status"), ("tenant_id", "event_id")],
    )
    subscriptions = _table(
        md, n.subscriptions,
        Column("id", Text, primary_key=True),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("product_id", Text, nullable=False),
        Column("wallet", Text),
        Column("stripe_customer_id", Text),
        Column("stripe_subscription_id", Text, unique=True),
        Column("payment_method", Text),
        Column("billing_period", Text),
        Column("billing_interval", Integer),
        Column("status", Text, nullable=False),
        Column("current_period_start", ts),
        Column("current_period_end", ts),
        Column("trial_end", ts),
        Column("cancelled_at", ts),
        Column("cancel_at_period_end", Boolean, nullable=False, server_default="false"),
        Column("metadata", json_type()),
        Column("created_at", ts, nullable=False),
        Column("updated_at", ts, nullable=False),
        index=[("tenant_id", "wallet", "product_id"), ("tenant_id", "stripe_customer_id"),
               ("tenant_id", "status"), ("current_period_end",)],
    )
    idempotency_keys = _table(
        md, n.idempotency_keys,
        Column("key", Text, nullable=False),
        Column("tenant_id", Text, nullable=False, server_default="default"),
        Column("status_code", Integer, nullable=False),
        Column("headers", json_type()),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", ts, nullable=False),
        Column("expires_at", ts, nullable=False),
        Column("fingerprint", Text, nullable=False, server_default=""),  # 0004
        PrimaryKeyConstraint("tenant_id", "key"),
        index=[("expires_at",)],
    )
    return Tables(
        metadata=md, payments=payments, payments_archive=payments_archive, sessions=sessions,
        products=products,
        coupons=coupons, cart_quotes=cart_quotes, refund_quotes=refund_quotes,
        admin_nonces=admin_nonces, webhook_queue=webhook_queue,
        subscriptions=subscriptions, idempotency_keys=idempotency_keys,
    )
