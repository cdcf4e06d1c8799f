"""The initial schema: spec 08's nine tables plus idempotency keys, frozen.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The DDL is spelled out here rather than built from `schema.define_tables`, so later changes
to the table definitions cannot rewrite what this revision did: they go into new revisions
(0002 onwards). Only the table names come from outside, from `storage.schema_mapping`,
because they are configuration rather than schema.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cedros_pay.storage.sql.migrations.ddl import json as _json
from cedros_pay.storage.sql.migrations.ddl import names as _names
from cedros_pay.storage.sql.migrations.ddl import split as _split
from cedros_pay.storage.sql.migrations.ddl import timestamp as _ts

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.Text, nullable=False, server_default="default")


def _create(name: str, *columns: Any, index: list[tuple[str, ...]]) -> None:
    schema, base = _split(name)
    op.create_table(base, *columns, schema=schema)
    for cols in index:
        op.create_index(f"idx_{base}_{'_'.join(cols)}", base, list(cols), schema=schema)


def upgrade() -> None:
    n = _names()
    _create(
        n.payments,
        sa.Column("signature", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("resource_id", sa.Text, nullable=False),
        sa.Column("wallet", sa.Text, nullable=False, server_default=""),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("amount_asset", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("metadata", _json()),
        index=[("tenant_id",), ("tenant_id", "resource_id"), ("tenant_id", "wallet"),
               ("tenant_id", "created_at")],
    )
    _create(
        n.sessions,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("resource_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("amount_cents", sa.BigInteger),
        sa.Column("currency", sa.Text),
        sa.Column("customer_email", sa.Text),
        sa.Column("metadata", _json()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts()),
        index=[("tenant_id", "resource_id"), ("tenant_id", "status")],
    )
    _create(
        n.products,
        sa.Column("id", sa.Text, nullable=False),
        _tenant(),
        sa.Column("description", sa.Text),
        sa.Column("fiat_amount", sa.BigInteger),
        sa.Column("fiat_currency", sa.Text),
        sa.Column("stripe_price_id", sa.Text),
        sa.Column("crypto_amount", sa.BigInteger),
        sa.Column("crypto_token", sa.Text),
        sa.Column("crypto_account", sa.Text),
        sa.Column("memo_template", sa.Text),
        sa.Column("metadata", _json()),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("subscription_config", _json()),
        sa.Column("created_at", _ts()),
        sa.Column("updated_at", _ts()),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        index=[("tenant_id", "active"), ("tenant_id", "stripe_price_id")],
    )
    _create(
        n.coupons,
        sa.Column("code", sa.Text, nullable=False),
        _tenant(),
        sa.Column("discount_type", sa.Text, nullable=False),
        sa.Column("discount_value", sa.Double, nullable=False),
        sa.Column("currency", sa.Text),
        sa.Column("scope", sa.Text),
        sa.Column("product_ids", _json()),
        sa.Column("payment_method", sa.Text),
        sa.Column("auto_apply", sa.Boolean, nullable=False),
        sa.Column("applies_at", sa.Text),
        sa.Column("usage_limit", sa.Integer),
        sa.Column("usage_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("starts_at", _ts()),
        sa.Column("expires_at", _ts()),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("metadata", _json()),
        sa.Column("created_at", _ts()),
        sa.Column("updated_at", _ts()),
        sa.PrimaryKeyConstraint("tenant_id", "code"),
        index=[("tenant_id", "active"), ("tenant_id", "auto_apply"), ("expires_at",)],
    )
    _create(
        n.cart_quotes,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("items", _json(), nullable=False),
        sa.Column("total_amount", sa.BigInteger, nullable=False),
        sa.Column("total_asset", sa.Text, nullable=False),
        sa.Column("metadata", _json()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("wallet_paid_by", sa.Text),
        index=[("tenant_id",), ("tenant_id", "expires_at")],
    )
    _create(
        n.refund_quotes,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("original_purchase_id", sa.Text, nullable=False),
        sa.Column("recipient_wallet", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("amount_asset", sa.Text, nullable=False),
        sa.Column("token", sa.Text),
        sa.Column("token_mint", sa.Text),
        sa.Column("token_decimals", sa.SmallInteger),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("processed_by", sa.Text),
        sa.Column("processed_at", _ts()),
        sa.Column("signature", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("metadata", _json()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        index=[("tenant_id",), ("tenant_id", "expires_at"),
               ("tenant_id", "original_purchase_id")],
    )
    _create(
        n.admin_nonces,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("consumed_at", _ts()),
        index=[("tenant_id",), ("tenant_id", "expires_at")],
    )
    _create(
        n.webhook_queue,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", _json()),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_attempt_at", _ts()),
        sa.Column("next_attempt_at", _ts()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts()),
        index=[("status", "next_attempt_at"), ("created_at",), ("completed_at",),
               ("tenant_id", "status")],
    )
    _create(
        n.subscriptions,
        sa.Column("id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("wallet", sa.Text),
        sa.Column("stripe_customer_id", sa.Text),
        sa.Column("stripe_subscription_id", sa.Text, unique=True),
        sa.Column("payment_method", sa.Text),
        sa.Column("billing_period", sa.Text),
        sa.Column("billing_interval", sa.Integer),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("current_period_start", _ts()),
        sa.Column("current_period_end", _ts()),
        sa.Column("trial_end", _ts()),
        sa.Column("cancelled_at", _ts()),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("metadata", _json()),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        index=[("tenant_id", "wallet", "product_id"), ("tenant_id", "stripe_customer_id"),
               ("tenant_id", "status"), ("current_period_end",)],
    )
    _create(
        n.idempotency_keys,
        sa.Column("key", sa.Text, nullable=False),
        _tenant(),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("headers", _json()),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
        index=[("expires_at",)],
    )


def downgrade() -> None:
    n = _names()
    for name in (n.idempotency_keys, n.subscriptions, n.webhook_queue, n.admin_nonces,
                 n.refund_quotes, n.cart_quotes, n.coupons, n.products, n.sessions,
                 n.payments):
        schema, base = _split(name)
        op.drop_table(base, schema=schema)
