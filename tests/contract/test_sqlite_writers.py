"""SQLite units of work queue in the process, in arrival order, not in SQLite's busy handler.

The busy handler makes a waiting writer sleep and retry, holding a pooled connection the
whole time: under concurrent payments a 3 ms transaction waited over a second, and enough
waiters took every connection, so even a read had to wait for the writer in front.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from contract.conftest import open_store
from contract.test_payments import tx

from cedros_pay.storage.store import Store

WAITERS = 20  # more than the SQLite engine's pool (5 + 10 overflow)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store("sqlite", str(tmp_path / "cedros.db"))
    yield store
    await store.close()


async def _hold(store: Store, opened: asyncio.Event, release: asyncio.Event) -> None:
    async with store.unit_of_work() as uow:
        assert await uow.payments.record(tx("sig_first"))
        opened.set()
        await release.wait()


async def _pay(store: Store, i: int, order: list[int]) -> None:
    async with store.unit_of_work() as uow:
        order.append(i)
        assert await uow.payments.record(tx(f"sig_{i}"))


async def test_waiting_writers_leave_connections_to_readers(sqlite: Store) -> None:
    opened, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(sqlite, opened, release))
    await opened.wait()
    order: list[int] = []
    writers = [asyncio.create_task(_pay(sqlite, i, order)) for i in range(WAITERS)]
    try:
        # Reads run beside the one writer (WAL); the queued writers hold no connection.
        # The bound only turns a hang into a failure.
        assert not await asyncio.wait_for(sqlite.payments.has_been_processed("sig_first"), 20)
    finally:
        release.set()
        await asyncio.gather(holder, *writers, return_exceptions=True)
    for task in [holder, *writers]:
        assert task.exception() is None
    assert await sqlite.payments.has_been_processed("sig_first")
    assert all([await sqlite.payments.has_been_processed(f"sig_{i}") for i in range(WAITERS)])


async def test_units_of_work_take_turns_in_arrival_order(sqlite: Store) -> None:
    opened, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(sqlite, opened, release))
    await opened.wait()
    order: list[int] = []
    writers = []
    for i in range(8):
        writers.append(asyncio.create_task(_pay(sqlite, i, order)))
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *writers)
    assert order == list(range(8))
