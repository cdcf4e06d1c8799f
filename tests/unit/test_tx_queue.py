"""Transaction queue: FIFO order, spacing, in-flight cap, 429 retries at the front of the
line with exponential backoff, a retry ceiling, stats and shutdown (spec 22, spec 11)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.tx_queue import TxQueue, is_rate_limited


def rate_limit() -> CedrosError:
    return CedrosError(ErrorCode.RPC_ERROR, "HTTP 429", {"rateLimited": True})


def recorder(log: list[str], name: str, *, fail: int = 0, delay: float = 0.0,
             error: Callable[[], Exception] = rate_limit) -> Callable[[], Awaitable[str]]:
    remaining = [fail]

    async def job() -> str:
        log.append(name)
        if delay:
            await asyncio.sleep(delay)
        if remaining[0] > 0:
            remaining[0] -= 1
            raise error()
        return f"sig-{name}"

    return job


async def test_jobs_run_in_order_with_spacing() -> None:
    queue = TxQueue(min_time_between=0.05)
    log: list[str] = []
    results = await asyncio.gather(*(queue.submit(recorder(log, n), id=n) for n in "abc"))
    assert results == ["sig-a", "sig-b", "sig-c"] and log == ["a", "b", "c"]
    times = [t for _, t in queue.send_log]
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(times))
    assert queue.stats().sent == 3
    await queue.shutdown()


async def test_max_in_flight_caps_concurrency() -> None:
    queue = TxQueue(max_in_flight=2)
    peak = [0]
    running = [0]

    async def job() -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.03)
        running[0] -= 1

    await asyncio.gather(*(queue.submit(job) for _ in range(6)))
    assert peak[0] == 2
    await queue.shutdown()


async def test_rate_limited_job_retries_at_the_front_with_backoff() -> None:
    queue = TxQueue(backoff=0.02, max_in_flight=1)
    log: list[str] = []
    first = asyncio.ensure_future(queue.submit(recorder(log, "a", fail=2), id="a"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(queue.submit(recorder(log, "b", delay=0.1), id="b"))
    assert await first == "sig-a"
    assert await second == "sig-b"
    # a went first, was rate-limited while b ran, then returned to the front each time.
    assert log[0] == "a" and log.count("a") == 3
    a_times = [t for name, t in queue.send_log if name == "a"]
    assert a_times[1] - a_times[0] >= 0.018 and a_times[2] - a_times[1] >= 0.036
    assert queue.stats().retried == 2
    await queue.shutdown()


def test_backoff_doubles_from_half_a_second() -> None:
    queue = TxQueue()
    assert [queue.backoff_for(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


async def test_rate_limit_gives_up_after_three_retries() -> None:
    queue = TxQueue(backoff=0.001)
    log: list[str] = []
    with pytest.raises(CedrosError) as caught:
        await queue.submit(recorder(log, "a", fail=10))
    assert is_rate_limited(caught.value)
    assert log == ["a"] * 4
    assert queue.stats().failed == 1
    await queue.shutdown()


async def test_other_errors_are_not_retried() -> None:
    queue = TxQueue(backoff=0.001)
    log: list[str] = []
    with pytest.raises(CedrosError) as caught:
        await queue.submit(recorder(log, "a", fail=1,
                                    error=lambda: CedrosError(ErrorCode.RPC_ERROR, "HTTP 503")))
    assert caught.value.code is ErrorCode.RPC_ERROR and log == ["a"]
    await queue.shutdown()


async def test_shutdown_drains_then_refuses_new_work() -> None:
    queue = TxQueue(min_time_between=0.02)
    log: list[str] = []
    pending = [asyncio.ensure_future(queue.submit(recorder(log, n))) for n in "ab"]
    await asyncio.sleep(0)
    await queue.shutdown(grace=2.0)
    assert [p.result() for p in pending] == ["sig-a", "sig-b"]
    with pytest.raises(CedrosError):
        await queue.submit(recorder(log, "late"))


async def test_shutdown_past_grace_fails_the_rest() -> None:
    queue = TxQueue(max_in_flight=1)
    log: list[str] = []
    slow = asyncio.ensure_future(queue.submit(recorder(log, "slow", delay=5)))
    waiting = asyncio.ensure_future(queue.submit(recorder(log, "next")))
    await asyncio.sleep(0.01)
    await queue.shutdown(grace=0.05)
    for fut in (slow, waiting):
        with pytest.raises(CedrosError):
            await fut
    assert log == ["slow"]


async def test_server_errors_retry_like_rate_limits() -> None:
    queue = TxQueue(backoff=0.001)
    log: list[str] = []

    def unavailable() -> CedrosError:
        return CedrosError(ErrorCode.RPC_ERROR, "HTTP 503", {"rateLimited": False})

    assert await queue.submit(recorder(log, "a", fail=2, error=unavailable)) == "sig-a"
    assert log == ["a"] * 3
    await queue.shutdown()


async def test_retries_stop_at_the_total_duration_cap() -> None:
    queue = TxQueue(backoff=0.05, max_total=0.08)
    log: list[str] = []
    with pytest.raises(CedrosError):
        await queue.submit(recorder(log, "a", fail=10))
    assert log == ["a"] * 2  # 50 ms fits in 80 ms; 50 + 100 ms does not
    await queue.shutdown()
