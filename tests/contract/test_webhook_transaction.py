"""The SQL queue's `enqueue(within=conn)`: the event commits or rolls back with the
transaction of the change that caused it (issue 12: payment recorded => event queued)."""

from __future__ import annotations

from pathlib import Path

import pytest
from contract.conftest import T0
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from cedros_pay.core.models import PendingWebhook
from cedros_pay.storage.sql.engine import create_postgres_engine, create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.schema import define_tables
from cedros_pay.storage.sql.store import sql_store


class _Abort(Exception):
    pass


def _engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncEngine:
    if backend == "postgres":
        return create_postgres_engine(request.getfixturevalue("postgres_url"))
    return create_sqlite_engine(str(tmp_path / "tx.db"))


def _hook(i: int) -> PendingWebhook:
    return PendingWebhook(id=f"wh_tx_{i}", url="http://127.0.0.1:9/hook", payload="{}",
                          event_type="payment.succeeded", created_at=T0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_enqueue_within_a_transaction_commits_or_rolls_back_with_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    await upgrade(engine)
    store = sql_store(engine)
    payments = define_tables().payments
    row = {"signature": "sig-1", "tenant_id": "default", "resource_id": "r", "wallet": "w",
           "amount": 1, "amount_asset": "USDC", "created_at": T0}
    with pytest.raises(_Abort):
        async with engine.begin() as conn:
            await conn.execute(insert(payments).values(**row))
            await store.webhooks.enqueue(_hook(1), within=conn)
            raise _Abort
    assert await store.webhooks.get("default", "wh_tx_1") is None
    assert not await store.payments.has_been_processed("sig-1")
    async with engine.begin() as conn:
        await conn.execute(insert(payments).values(**row))
        await store.webhooks.enqueue(_hook(2), within=conn)
    assert await store.webhooks.get("default", "wh_tx_2") is not None
    assert await store.payments.has_been_processed("sig-1")
    with pytest.raises(TypeError):
        await store.webhooks.enqueue(_hook(3), within=object())
    await store.close()
