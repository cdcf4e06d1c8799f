"""Workers (spec 11): supervision with backoff, cleanup, archival, lifecycle registration."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest
from support.waiting import eventually

from cedros_pay.bootstrap.infra import build_infra
from cedros_pay.bootstrap.workers import start_workers, storage_workers
from cedros_pay.config import Config
from cedros_pay.core.clock import ManualClock
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.storage.store import Store, memory_store
from cedros_pay.workers import Backoff, PeriodicWorker, SupervisedWorker
from cedros_pay.workers.cleanup import Archival, Cleanup, CleanupFailed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAST = Backoff(initial=0.01, maximum=0.04)


def test_backoff_doubles_up_to_its_maximum() -> None:
    b = Backoff(initial=1, maximum=60)
    assert [b.delay(n) for n in (1, 2, 3, 4, 7, 20)] == [1, 2, 4, 8, 60, 60]


async def test_a_crashing_worker_is_logged_and_restarted_with_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []

    async def flaky(stopping: asyncio.Event) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) <= 3:
            raise RuntimeError(f"crash {len(attempts)}")
        await stopping.wait()

    worker = SupervisedWorker("flaky", flaky, backoff=Backoff(initial=0.02, maximum=0.08))
    with caplog.at_level(logging.ERROR, "cedros_pay.workers"):
        worker.start()
        await eventually(lambda: len(attempts) == 4)
        await worker.stop()
    assert len(attempts) == 4 and worker.restarts == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035 and gaps[2] >= 0.075  # 0.02, 0.04, 0.08
    crashes = [r for r in caplog.records if r.getMessage() == "worker crashed; restarting"]
    assert len(crashes) == 3 and crashes[0].exc_info is not None
    assert crashes[0].worker == "flaky"  # type: ignore[attr-defined]
    assert worker.last_error == "RuntimeError: crash 3"


async def test_a_worker_that_returns_by_itself_is_restarted() -> None:
    runs = 0

    async def quits(stopping: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs >= 3:
            await stopping.wait()

    worker = SupervisedWorker("quits", quits, backoff=FAST)
    worker.start()
    await eventually(lambda: runs == 3)
    await asyncio.sleep(0.05)  # the third run waits for `stopping`: no fourth
    assert worker.running and runs == 3
    await worker.stop()
    assert not worker.running


async def test_stop_waits_for_work_in_flight_then_cancels_after_grace() -> None:
    finished: list[str] = []

    waiting = asyncio.Event()
    stuck = asyncio.Event()

    async def polite(stopping: asyncio.Event) -> None:
        waiting.set()
        await stopping.wait()
        await asyncio.sleep(0.05)  # finishing the current item
        finished.append("polite")

    async def stubborn(stopping: asyncio.Event) -> None:
        stuck.set()
        await asyncio.sleep(60)
        finished.append("stubborn")

    a = SupervisedWorker("polite", polite, grace=30.0)
    b = SupervisedWorker("stubborn", stubborn, grace=0.05)
    a.start()
    b.start()
    await asyncio.wait_for(asyncio.gather(waiting.wait(), stuck.wait()), 10)
    await a.stop()
    assert finished == ["polite"]  # its grace was ample: it finished, not cancelled
    started = asyncio.get_running_loop().time()
    await b.stop()
    # Cancelled after its 0.05 s grace, not left to sleep its minute: any bound well
    # under 60 s proves it; 10 s leaves a loaded machine room.
    assert asyncio.get_running_loop().time() - started < 10
    assert finished == ["polite"] and not b.running


async def test_periodic_worker_runs_now_and_every_interval_surviving_crashes() -> None:
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ValueError("one bad run")

    worker = PeriodicWorker("job", interval=0.03, job=job, backoff=FAST)
    worker.start()
    await eventually(lambda: calls >= 4)
    await worker.stop()
    assert calls >= 4 and worker.restarts == 1 and worker.runs == calls - 1


class Deleter:
    def __init__(self, removed: int = 1, fail: bool = False) -> None:
        self.calls: list[datetime] = []
        self.removed = removed
        self.fail = fail

    async def __call__(self, when: datetime) -> int:
        self.calls.append(when)
        if self.fail:
            raise ConnectionError("db down")
        return self.removed


def store_with(**deleters: Deleter) -> Store:
    store = memory_store()
    store.carts.delete_expired = deleters["carts"]  # type: ignore[method-assign]
    store.refunds.delete_expired_pending = deleters["refunds"]  # type: ignore[method-assign]
    store.nonces.delete_expired = deleters["nonces"]  # type: ignore[method-assign]
    store.idempotency.delete_expired = deleters["idempotency"]  # type: ignore[method-assign]
    return store


async def test_cleanup_deletes_each_kind_of_expired_data_and_isolates_failures(
        caplog: pytest.LogCaptureFixture) -> None:
    d = {"carts": Deleter(2), "refunds": Deleter(fail=True), "nonces": Deleter(3),
         "idempotency": Deleter(0)}
    cleanup = Cleanup(store_with(**d), ManualClock(NOW))
    with caplog.at_level(logging.ERROR):
        removed = await cleanup()
    assert removed == {"cart_quotes": 2, "admin_nonces": 3, "idempotency_keys": 0}
    assert all(x.calls == [NOW] for x in d.values())
    assert "cleanup failed" in caplog.text


async def test_cleanup_raises_when_everything_fails() -> None:
    d = {k: Deleter(fail=True) for k in ("carts", "refunds", "nonces", "idempotency")}
    with pytest.raises(CleanupFailed):
        await Cleanup(store_with(**d), ManualClock(NOW))()


async def test_cleanup_really_removes_expired_memory_data() -> None:
    from cedros_pay.core.models import StoredResponse

    store = memory_store()
    for key, expires in (("old", NOW - timedelta(seconds=1)), ("new", NOW + timedelta(hours=1))):
        await store.idempotency.save("default", key, StoredResponse(
            status=200, headers={}, body=b"", created_at=NOW - timedelta(days=1),
            expires_at=expires))
    removed = await Cleanup(store, ManualClock(NOW))()
    assert removed["idempotency_keys"] == 1
    assert await store.idempotency.get("default", "new", NOW) is not None


async def test_archival_moves_payments_older_than_the_retention() -> None:
    store = memory_store()
    seen: list[datetime] = []

    async def archive(before: datetime) -> int:
        seen.append(before)
        return 7

    store.payments.archive_older_than = archive  # type: ignore[method-assign]
    assert await Archival(store, ManualClock(NOW), timedelta(days=90))() == 7
    assert seen == [NOW - timedelta(days=90)]


async def test_workers_register_with_the_lifecycle_and_stop_last_in_first_out(
        caplog: pytest.LogCaptureFixture) -> None:
    config = Config(storage={"archival": {"enabled": True}})
    infra = build_infra(config)
    lifecycle = Lifecycle()
    lifecycle.push("store", _noop)
    workers = storage_workers(config, memory_store(), ManualClock(NOW), infra.sweeps)
    start_workers(workers, lifecycle)
    names = [w.name for w in workers]
    assert names == ["cleanup", "archival", "rate_limit_sweep", "idempotency_sweep"]
    assert lifecycle.names == ["store", *(f"worker:{n}" for n in names)]
    assert all(w.running for w in workers)
    with caplog.at_level(logging.INFO, "cedros_pay.workers"):
        await lifecycle.close(budget=15)
    stopped = [r.worker for r in caplog.records  # type: ignore[attr-defined]
               if r.getMessage() == "worker stopped"]
    assert stopped == list(reversed(names))
    assert not any(w.running for w in workers)


async def test_archival_is_not_started_unless_enabled() -> None:
    config = Config()
    infra = build_infra(config)
    workers = storage_workers(config, memory_store(), ManualClock(NOW), infra.sweeps)
    start_workers(workers, Lifecycle())
    assert "archival" not in [w.name for w in workers]
    for w in workers:
        await w.stop()


async def _noop() -> None:
    return None
