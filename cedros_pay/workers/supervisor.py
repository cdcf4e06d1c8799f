"""Supervision for background workers: restart on crash with backoff, graceful stop.

A worker's body is a coroutine function taking a `stopping` event; it runs until the
event is set and then returns. If it raises, or returns while nobody asked it to stop,
the supervisor logs it and runs it again after the backoff. `stop()` sets the event,
lets the body finish what it is doing for up to `grace` seconds (spec 11: wait for
in-flight operations, with a timeout), then cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cedros_pay.core.errors import CedrosError

log = logging.getLogger("cedros_pay.workers")

Body = Callable[[asyncio.Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        """The pause before restart number `failures` (1-based)."""
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


class SupervisedWorker:
    def __init__(self, name: str, body: Body, *, backoff: Backoff = Backoff(),
                 grace: float = 5.0) -> None:
        self.name = name
        self._body = body
        self.backoff = backoff
        self.grace = grace
        self.restarts = 0
        self.last_error: str | None = None
        self._failures = 0  # consecutive; reset by `healthy()`
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def healthy(self) -> None:
        """Called by a body after useful work: the next crash starts the backoff over."""
        self._failures = 0

    def start(self) -> None:
        if self.running:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"worker:{self.name}")
        log.info("worker started", extra={"worker": self.name})

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._body(self._stopping)
                if self._stopping.is_set():
                    return
                raise RuntimeError("worker returned without being asked to stop")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self.backoff.delay(self._failures)
                extra = {"worker": self.name, "restart_in_s": delay, "restarts": self.restarts}
                if isinstance(exc, CedrosError) and exc.retryable:
                    # An outage (the database gone, say), not a bug: no traceback.
                    log.warning("worker stopped by an outage; restarting",
                                extra={**extra, "code": exc.code.value})
                else:
                    log.error("worker crashed; restarting", exc_info=exc, extra=extra)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.grace)
        except TimeoutError:
            log.warning("worker did not stop in time; cancelling", extra={"worker": self.name})
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._task = None
            log.info("worker stopped", extra={"worker": self.name})


class PeriodicWorker(SupervisedWorker):
    """Runs `job` now and then every `interval` seconds (cleanup, archival)."""

    def __init__(self, name: str, interval: float, job: Callable[[], Awaitable[object]], *,
                 backoff: Backoff = Backoff(), grace: float = 5.0) -> None:
        super().__init__(name, self._loop, backoff=backoff, grace=grace)
        self.interval = interval
        self.job = job
        self.runs = 0
        self.last_run: float | None = None

    async def _loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.job()
            self.runs += 1
            self.last_run = time.time()
            self.healthy()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.interval)
