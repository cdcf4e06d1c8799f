"""`python -m bench.sqlite_units`: CPU per settlement's storage work, aiosqlite against inline.

The storage a settlement does (the replay read, then one unit of work: the payment row,
its archive check and the queued webhook) runs through the real SQL store twice in one
process, on two fresh SQLite files: once on SQLAlchemy's aiosqlite engine (a worker thread
per connection, what the server used before) and once on `InlineEngine` (statements on
the loop's thread, what it uses now). `-c` coroutines run at once, as requests would.
Reported: CPU time (this process, all threads) and wall time per settlement, and the
ratio. CPU time is the figure that matters on a loaded machine; both sides share a run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from cedros_pay.core.models import PaymentTransaction, PendingWebhook
from cedros_pay.storage.sql.base import SqlEngine
from cedros_pay.storage.sql.engine import create_sqlite_engine
from cedros_pay.storage.sql.migrate import upgrade
from cedros_pay.storage.sql.store import sql_store
from cedros_pay.storage.store import Store


def _old_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # As before: SQLite's busy handler waits for the lock, on aiosqlite's thread.
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL",
                   "foreign_keys=ON"):
        dbapi_conn.execute(f"PRAGMA {pragma}")


class _AiosqliteEngine:
    """The engine and unit of work as they were: aiosqlite, and a write transaction that
    queues on this process's lock and then takes SQLite's with BEGIN IMMEDIATE."""

    def __init__(self, path: Path) -> None:
        self._engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        event.listen(self._engine.sync_engine, "connect", _old_pragmas)
        self._writers = asyncio.Lock()
        self.dialect = self._engine.dialect
        self.sync_engine = self._engine.sync_engine
        self.connect = self._engine.connect
        self.dispose = self._engine.dispose

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._writers, self._engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()


def _aiosqlite_engine(path: Path) -> SqlEngine:
    return cast(SqlEngine, _AiosqliteEngine(path))


async def _settle(store: Store, side: str, i: int) -> None:
    signature = f"{side}-sig-{i:08d}"
    now = datetime.now(UTC)
    if await store.payments.has_been_processed(signature):
        raise RuntimeError("a fresh signature read as processed")
    async with store.unit_of_work() as uow:
        if not await uow.payments.record(PaymentTransaction(
                signature=signature, resource_id="demo", wallet="payer", amount_atomic=10_000,
                asset="USDC", created_at=now, metadata={"network": "bench"})):
            raise RuntimeError("a fresh signature was refused")
        await uow.webhooks.enqueue(PendingWebhook(
            id=f"{side}-wh-{i:08d}", url="http://127.0.0.1:9/hook", payload="{}",
            event_type="payment.succeeded", created_at=now, event_id=f"evt-{side}-{i}"))


async def _side(side: str, engine: SqlEngine, n: int, concurrency: int) -> tuple[float, float]:
    await upgrade(engine)
    store = sql_store(engine)
    try:
        for i in range(50):  # warm the statement caches and the pool
            await _settle(store, f"{side}-warm", i)
        numbers = iter(range(n))

        async def worker() -> None:
            for i in numbers:
                await _settle(store, side, i)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - cpu) / n * 1e3, (time.perf_counter() - wall) / n * 1e3
    finally:
        await store.close()


async def _run(n: int, concurrency: int, rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="cedros-bench-sqlite-"))
    best: dict[str, tuple[float, float]] = {}
    for r in range(rounds):
        for side in ("aiosqlite", "inline"):
            path = work / f"{side}-{r}.db"
            engine = (_aiosqlite_engine(path) if side == "aiosqlite"
                      else create_sqlite_engine(str(path)))
            cpu, wall = await _side(side, engine, n, concurrency)
            if side not in best or cpu < best[side][0]:
                best[side] = (cpu, wall)
    print(f"storage work of one settlement, {n} settlements, {concurrency} at once, "
          f"best of {rounds} interleaved rounds:")
    for side, (cpu, wall) in best.items():
        print(f"  {side:10} CPU {cpu:6.3f} ms   wall {wall:6.3f} ms")
    print(f"  inline / aiosqlite CPU: {best['inline'][0] / best['aiosqlite'][0]:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_units", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="settlements per side and round")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    asyncio.run(_run(args.n, args.concurrency, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
