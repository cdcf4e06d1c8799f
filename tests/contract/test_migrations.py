"""Migrations: `upgrade` builds exactly the schema the repositories use, under any names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from contract.conftest import T0
from sqlalchemy import insert, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cedros_pay.core.models import PaymentTransaction
from cedros_pay.storage.sql import schema
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import current_revision, upgrade
from cedros_pay.storage.sql.schema import TableNames, check_table_name, define_tables
from cedros_pay.storage.sql.store import sql_store


def _engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncEngine:
    if backend == "postgres":
        return create_postgres_engine(request.getfixturevalue("postgres_url"))
    return create_sqlite_engine(str(tmp_path / "m.db"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migrated_schema_matches_the_table_definitions(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    await upgrade(engine)
    await upgrade(engine)  # idempotent
    assert await current_revision(engine) == "0004"
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                # SQLite reflects the empty-string default of `wallet` unlike it is written,
                # so server defaults are compared where reflection reports them faithfully.
                MigrationContext.configure(c, opts={
                    "compare_type": True, "compare_server_default": backend == "postgres"}),
                define_tables().metadata))
    await engine.dispose()
    # SQLite cannot report partial-index predicates; only real differences matter here.
    assert [d for d in diff if d[0] not in ("add_index", "remove_index")] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_schema_mapping_renames_tables(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    names = TableNames(payments="ledger", products="catalog_items")
    await upgrade(engine, names)
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {"ledger", "catalog_items"} <= tables
    assert "payment_transactions" not in tables
    store = sql_store(engine, names)
    tx = PaymentTransaction(signature="s", resource_id="r", wallet="w", amount_atomic=1,
                            asset="USDC", created_at=T0)
    assert await store.payments.record(tx)
    assert not await store.payments.record(tx)
    await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_migrations_do_not_read_the_live_table_definitions(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def changed(names: TableNames | None = None) -> schema.Tables:
        raise AssertionError("a migration built its DDL from define_tables")

    monkeypatch.setattr(schema, "define_tables", changed)
    engine = _engine(backend, request, tmp_path)
    await upgrade(engine)
    assert await current_revision(engine) == "0004"
    await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_0001_is_the_frozen_schema_and_later_revisions_upgrade_its_data(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    names = TableNames(cart_quotes="carts_v1")
    await upgrade(engine, names, revision="0001")
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: [col["name"] for col in inspect(c).get_columns("carts_v1")])
    assert columns == ["id", "tenant_id", "items", "total_amount", "total_asset", "metadata",
                       "created_at", "expires_at", "wallet_paid_by"]
    t = define_tables(names).cart_quotes
    async with engine.begin() as conn:  # a cart written before 0002, in 0001's columns
        await conn.execute(insert(t).values(
            id="cart_old", tenant_id="default", items=[], total_amount=5, total_asset="USDC",
            created_at=T0, expires_at=T0))
    await upgrade(engine, names)
    assert await current_revision(engine) == "0004"
    store = sql_store(engine, names)
    old = await store.carts.get("default", "cart_old")
    assert old is not None and old.total_atomic == 5 and not old.is_paid
    assert await store.carts.claim("default", "cart_old", "sig", T0, timedelta(minutes=1))
    assert not await store.carts.claim("default", "cart_old", "sig2", T0, timedelta(minutes=1))
    await store.close()


@pytest.mark.parametrize("name", ["payments; DROP TABLE x", "a-b", "1abc", "a.b.c", "", "x" * 64,
                                  'p"q'])
def test_unsafe_table_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_table_name(name)
    with pytest.raises(ValueError):
        TableNames(payments=name)


@pytest.mark.parametrize("name", ["payments", "cedros.payments", "_x1"])
def test_safe_table_names_are_accepted(name: str) -> None:
    assert check_table_name(name) == name


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_0004_gives_idempotency_rows_written_before_it_an_empty_fingerprint(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    await upgrade(engine, revision="0003")
    async with engine.begin() as conn:  # a response cached before 0004, in 0003's columns
        await conn.execute(text(
            "INSERT INTO idempotency_keys (key, tenant_id, status_code, headers, body, "
            "created_at, expires_at) VALUES ('k', 'default', 200, NULL, :body, :t0, :t1)"),
            {"body": b"{}", "t0": T0, "t1": T0 + timedelta(hours=24)})
    await upgrade(engine)
    assert await current_revision(engine) == "0004"
    store = sql_store(engine)
    old = await store.idempotency.get("default", "k", T0)
    assert old is not None and old.fingerprint == "" and old.body == b"{}"
    await store.close()
