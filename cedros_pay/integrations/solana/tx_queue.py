"""Rate-limited transaction submission (spec 22 "Transaction Queue", spec 11).

High-volume servers hit their RPC provider's rate limits. The queue paces submissions:

- first in, first out, one worker task;
- at least `min_time_between` seconds between two sends;
- at most `max_in_flight` sends running at once (0: unlimited);
- a send the RPC answers with a rate limit (HTTP 429, "too many requests") or a server
  error (HTTP 5xx, node behind) waits 500 ms x 2^(n-1) before its n-th retry, then goes
  to the FRONT of the queue (it was first in line; newer work must not overtake it);
  after `max_retries` retries, or once a retry would end more than `max_total` (120 s)
  after the first attempt, it fails (spec 22 "Complete Transaction Retry Policy");
- `shutdown()` stops taking work, lets queued and running sends finish within a grace
  period, then fails what is left with `rpc_error` (never sent).

A job is any coroutine function (the verifier passes one `sendTransaction`); the caller
awaits its result through `submit`. The queue does not retry anything but rate limits:
other faults are the job's own answer. Give it an RPC client that does not retry 429s
itself, or the two backoffs multiply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cedros_pay.core.errors import CedrosError, ErrorCode

log = logging.getLogger("cedros_pay.solana.tx_queue")

T = TypeVar("T")

QUEUE_POLL_INTERVAL = 0.05  # seconds: the worker's idle check
MAX_TX_RETRIES = 3
MAX_RETRY_DURATION = 120.0  # seconds from the first attempt
RATE_LIMIT_BACKOFF = 0.5  # seconds before the first retry; doubles after


def is_rate_limited(exc: BaseException) -> bool:
    """A SolanaRpc failure caused by the provider's rate limit (see rpc.py `rateLimited`)."""
    return (isinstance(exc, CedrosError) and exc.details is not None
            and exc.details.get("rateLimited") is True)


def is_retryable(exc: BaseException) -> bool:
    """A rate limit, or another transient RPC fault (5xx, node behind) that SolanaRpc gave
    up on; not a transport failure (SolanaRpc retried those) nor a refusal."""
    return is_rate_limited(exc) or (
        isinstance(exc, CedrosError) and exc.code is ErrorCode.RPC_ERROR
        and exc.details is not None and "rateLimited" in exc.details)


@dataclass(frozen=True, slots=True)
class QueueStats:
    queued: int
    in_flight: int
    sent: int  # jobs that completed (success or a non-rate-limit failure)
    retried: int  # rate-limited attempts that were re-queued
    failed: int  # jobs that ended in an error, rate-limit give-ups included


@dataclass(slots=True)
class _Item(Generic[T]):
    id: str
    job: Callable[[], Awaitable[T]]
    future: asyncio.Future[T]
    retries: int = 0
    attempts: list[float] = field(default_factory=list)  # monotonic send times


class TxQueue:
    def __init__(self, *, min_time_between: float = 0.0, max_in_flight: int = 0,
                 max_retries: int = MAX_TX_RETRIES, backoff: float = RATE_LIMIT_BACKOFF,
                 max_total: float = MAX_RETRY_DURATION,
                 rate_limited: Callable[[BaseException], bool] = is_retryable,
                 poll_interval: float = QUEUE_POLL_INTERVAL) -> None:
        self.min_time_between = min_time_between
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_total = max_total
        self._rate_limited = rate_limited
        self._poll = poll_interval
        self._queue: deque[_Item[Any]] = deque()
        self._in_flight = 0
        self._last_send: float | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._ids = 0
        self._sent = self._retried = self._failed = 0
        self.send_log: list[tuple[str, float]] = []  # (id, monotonic time), for tests/metrics

    # --- public -------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None or self._worker.done():
            self._closing = False
            self._worker = asyncio.create_task(self._run(), name="tx-queue")

    async def submit(self, job: Callable[[], Awaitable[T]], *, id: str | None = None) -> T:
        """Run `job` when the queue allows it and return its result (or raise its error)."""
        if self._closing:
            raise CedrosError(ErrorCode.RPC_ERROR,
                              "the transaction queue is shutting down")
        self.start()
        self._ids += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(id or f"tx-{self._ids}", job, future))
        self._wake.set()
        return await future

    def backoff_for(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based): 500 ms x 2^(retry-1)."""
        return float(self.backoff * 2 ** (retry - 1))

    def stats(self) -> QueueStats:
        return QueueStats(queued=len(self._queue), in_flight=self._in_flight, sent=self._sent,
                          retried=self._retried, failed=self._failed)

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop taking work; drain within `grace` seconds; fail whatever is left."""
        self._closing = True
        deadline = time.monotonic() + grace
        while (self._queue or self._in_flight or self._tasks) and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(self._poll)
        if self._worker is not None:  # first, so nothing new starts while we cancel
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(CedrosError(
                    ErrorCode.RPC_ERROR, "the transaction queue shut down"))

    # --- the worker ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue or not self._slot_free():
                self._wake.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                continue
            wait = self._spacing_wait()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # the head may have changed (a priority retry) while waiting
            item = self._queue.popleft()
            if item.future.done():  # the caller gave up (cancelled)
                continue
            self._in_flight += 1
            now = time.monotonic()
            self._last_send = now
            item.attempts.append(now)
            self.send_log.append((item.id, now))
            self._spawn(self._send(item))

    def _slot_free(self) -> bool:
        return self.max_in_flight <= 0 or self._in_flight < self.max_in_flight

    def _spacing_wait(self) -> float:
        if self._last_send is None or self.min_time_between <= 0:
            return 0.0
        return self._last_send + self.min_time_between - time.monotonic()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, item: _Item[Any]) -> None:
        try:
            await self._attempt(item)
        except asyncio.CancelledError:  # shutdown ran out of grace: the caller must hear
            if not item.future.done():
                item.future.set_exception(CedrosError(
                    ErrorCode.RPC_ERROR, "the transaction queue shut down"))
            raise

    async def _attempt(self, item: _Item[Any]) -> None:
        try:
            result = await item.job()
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
        finally:
            self._in_flight -= 1
            self._wake.set()
        if error is None:
            self._sent += 1
            if not item.future.done():
                item.future.set_result(result)
            return
        delay = self.backoff_for(item.retries + 1)
        in_time = time.monotonic() + delay - item.attempts[0] <= self.max_total
        if self._rate_limited(error) and item.retries < self.max_retries and in_time:
            item.retries += 1
            self._retried += 1
            log.info("transaction %s rate-limited; retry %d in %.2fs", item.id,
                     item.retries, delay)
            await asyncio.sleep(delay)
            self._queue.appendleft(item)
            self._wake.set()
            return
        self._failed += 1
        if not item.future.done():
            item.future.set_exception(error)
