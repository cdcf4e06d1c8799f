"""Payment ledger contract: replay protection on every backend (spec 13)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from contract.conftest import T0

from cedros_pay.core.models import PaymentTransaction
from cedros_pay.storage.sql.base import SqlEngine
from cedros_pay.storage.sql.engine import create_postgres_engine
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.payments import SqlPayments
from cedros_pay.storage.sql.schema import define_tables
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store


def tx(sig: str, tenant: str = "default", resource: str = "r1", at: int = 0,
       amount: int = 1_000_000) -> PaymentTransaction:
    return PaymentTransaction(
        signature=sig, tenant_id=tenant, resource_id=resource, wallet="W1",
        amount_atomic=amount, asset="USDC", created_at=T0 + timedelta(seconds=at),
        metadata={"k": "v"},
    )


async def test_record_payment_succeeds_once_then_refuses_the_signature(store: Store) -> None:
    assert await store.payments.record(tx("sig1")) is True
    assert await store.payments.record(tx("sig1", resource="other")) is False
    got = await store.payments.get("default", "sig1")
    assert got is not None
    assert (got.resource_id, got.amount_atomic, got.asset, got.metadata) == (
        "r1", 1_000_000, "USDC", {"k": "v"})
    assert got.created_at == T0


async def test_fifty_concurrent_records_of_one_signature_give_one_success(store: Store) -> None:
    results = await asyncio.gather(*(store.payments.record(tx("race", resource=f"r{i}"))
                                     for i in range(50)))
    assert results.count(True) == 1
    assert results.count(False) == 49


async def test_signature_is_global_across_tenants(store: Store) -> None:
    assert await store.payments.record(tx("shared", tenant="a"))
    assert not await store.payments.record(tx("shared", tenant="b"))
    assert await store.payments.has_been_processed("shared")
    assert await store.payments.get("b", "shared") is None
    assert await store.payments.get("a", "shared") is not None


async def test_record_many_is_all_or_nothing(store: Store) -> None:
    assert await store.payments.record(tx("used"))
    batch = [tx("new1"), tx("used"), tx("new2")]
    assert await store.payments.record_many(batch) is False
    assert not await store.payments.has_been_processed("new1")
    assert not await store.payments.has_been_processed("new2")
    assert await store.payments.record_many([tx("new1"), tx("new2")]) is True
    assert await store.payments.has_been_processed("new2")


async def test_record_many_refuses_a_batch_repeating_a_signature(store: Store) -> None:
    assert await store.payments.record_many([tx("dup"), tx("dup")]) is False
    assert not await store.payments.has_been_processed("dup")


async def test_archive_moves_only_older_payments_and_keeps_them_used(store: Store) -> None:
    await store.payments.record(tx("old", at=0))
    await store.payments.record(tx("new", at=3600))
    assert await store.payments.archive_older_than(T0 + timedelta(minutes=30)) == 1
    assert await store.payments.get("default", "old") is None  # out of the hot table
    assert await store.payments.get("default", "new") is not None
    # Replay protection is not weakened: an archived signature still cannot pay again.
    assert await store.payments.has_been_processed("old")
    assert not await store.payments.record(tx("old", at=7200))
    assert not await store.payments.record_many([tx("fresh", at=7200), tx("old", at=7200)])
    assert not await store.payments.has_been_processed("fresh")
    assert await store.payments.archive_older_than(T0 + timedelta(minutes=30)) == 0
    assert await store.payments.record(tx("fresh", at=7200))


async def test_int64_amounts_survive(store: Store) -> None:
    big = 2**63 - 1
    await store.payments.record(tx("big", amount=big))
    got = await store.payments.get("default", "big")
    assert got is not None and got.amount_atomic == big


async def test_listing_filters_pages_and_totals(store: Store) -> None:
    from cedros_pay.core.models import AssetTotal, PaymentFilter

    for i in range(5):
        await store.payments.record(tx(f"sig{i}", resource="r1" if i % 2 else "r2", at=i,
                                       amount=100 + i))
    await store.payments.record(tx("stripe:cs_1", resource="r3", at=10, amount=500))
    await store.payments.record(tx("other-tenant", tenant="b", at=3))
    everything = PaymentFilter()
    page1 = await store.payments.page("default", everything, limit=4)
    assert [p.signature for p in page1] == ["stripe:cs_1", "sig4", "sig3", "sig2"]
    last = page1[-1]
    page2 = await store.payments.page("default", everything, limit=4,
                                      after=(last.created_at, last.signature))
    assert [p.signature for p in page2] == ["sig1", "sig0"]
    r1 = await store.payments.page("default", PaymentFilter(resource_id="r1"), limit=10)
    assert [p.signature for p in r1] == ["sig3", "sig1"]
    window = PaymentFilter(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=4))
    assert [p.signature for p in await store.payments.page("default", window, 10)] == [
        "sig3", "sig2", "sig1"]
    x402 = await store.payments.page("default", PaymentFilter(method="x402"), limit=10)
    assert "stripe:cs_1" not in {p.signature for p in x402} and len(x402) == 5
    assert await store.payments.totals("default", PaymentFilter(method="x402")) == [
        AssetTotal("USDC", 5, 100 + 101 + 102 + 103 + 104)]
    assert await store.payments.totals("default", PaymentFilter(method="stripe")) == [
        AssetTotal("USDC", 1, 500)]
    assert await store.payments.totals("nobody", everything) == []


class _CommitsBetweenStatements:
    """An engine stand-in whose write transaction runs `between()` (on other connections,
    committed) after the transaction's first statement: archival's copy, before its
    delete. This pins down the window that READ COMMITTED leaves open between them."""

    def __init__(self, engine: SqlEngine, between: Callable[[], Awaitable[object]]) -> None:
        self._engine = engine
        self._between = between
        self.dialect = engine.dialect
        self.connect = engine.connect

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Any]:
        async with self._engine.begin() as conn:
            between = self._between
            real_execute = conn.execute

            async def execute(statement: Any, *args: Any) -> Any:
                result = await real_execute(statement, *args)
                nonlocal between
                if between is not None:
                    run, between = between, None
                    await run()
                return result

            proxy = SimpleNamespace(execute=execute, dialect=conn.dialect)
            yield proxy


@pytest.mark.postgres
async def test_a_payment_committed_between_archivals_copy_and_delete_keeps_its_signature(
        postgres_url: str) -> None:
    """PostgreSQL only: SQLite and memory stores serialize writers, so nothing can commit
    between the two statements there. On PostgreSQL the delete sees a row committed after
    the copy; it must leave it (it was never copied), or its signature could pay again."""
    engine = create_postgres_engine(postgres_url)
    await upgrade(engine)
    store = sql_store(engine)
    try:
        assert await store.payments.record(tx("old", at=0))
        late = tx("late", at=60)  # also older than the cut-off

        archiver = SqlPayments(
            _CommitsBetweenStatements(engine, lambda: store.payments.record(late)),
            define_tables())
        assert await archiver.archive_older_than(T0 + timedelta(minutes=30)) == 1
        assert await store.payments.has_been_processed("old")
        assert await store.payments.get("default", "late") is not None  # not deleted uncopied
        assert await store.payments.has_been_processed("late")
        assert not await store.payments.record(tx("late", resource="again"))
        # The next archival moves it as usual.
        assert await store.payments.archive_older_than(T0 + timedelta(minutes=30)) == 1
        assert await store.payments.has_been_processed("late")
    finally:
        await store.close()
