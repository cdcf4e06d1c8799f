"""Per-route deadlines (spec 10): 5 s for health and discovery, 60 s for the rest.

The deadline covers the handler's work up to the start of its response. When it passes,
the handler is *cancelled*, not abandoned: it cannot write anything after the client was
told the request failed, and a database transaction it had open rolls back. The client
gets a 503 `service_unavailable` envelope, retryable: a payment retried after a timeout
is either recorded then or refused as a replay. Once a response has started it is let
finish, since a half-sent body cannot be replaced by an error any more.

A timer per request (`asyncio.timeout`) was a measurable share of a cheap request. All
requests under one duration get their deadlines in arrival order, so a queue per duration
with one timer, armed for the oldest request still running, serves them all: a request
costs an append, and the timer wakes about once per duration rather than per request.
Cancellation is what `asyncio.timeout` does: cancel the task, and on the way out
`uncancel` it, so a cancellation from elsewhere is never mistaken for the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import Exchange, exchange, route_path, send_error

log = logging.getLogger("cedros_pay.timeout")

TIMEOUT_STATUS = 503


def discovery_paths(prefix: str) -> Callable[[str], bool]:
    """Spec 02's health and discovery group (5 s), under the route prefix."""
    exact = {f"{prefix}/cedros-health", f"{prefix}/openapi.json", f"{prefix}/resources/list",
             f"{prefix}/metrics"}
    well_known = f"{prefix}/.well-known/"
    return lambda path: path in exact or path.startswith(well_known)


class _Watch:
    """One request under a deadline; over once it finished (`done`) or its response began
    (its Exchange has `started`)."""

    __slots__ = ("done", "exchange", "expired", "task", "when")

    def __init__(self, when: float, task: asyncio.Task[object], ex: Exchange) -> None:
        self.when = when
        self.task = task
        self.exchange = ex
        self.done = False
        self.expired = False

    @property
    def over(self) -> bool:
        return self.done or self.exchange.started


class _Deadlines:
    """The running requests of one duration on one loop, oldest first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.queue: deque[_Watch] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[object], ex: Exchange) -> _Watch:
        queue = self.queue
        while queue and queue[0].done:
            queue.popleft()
        entry = _Watch(self.loop.time() + self.seconds, task, ex)
        queue.append(entry)
        if self.timer is None:  # otherwise armed already, no later than this deadline
            self.timer = self.loop.call_at(entry.when, self.expire)
        return entry

    def expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        queue = self.queue
        while queue:
            entry = queue[0]
            if not entry.over and entry.when > now:
                self.timer = self.loop.call_at(entry.when, self.expire)
                return
            queue.popleft()
            if not entry.over:
                entry.expired = True
                entry.task.cancel()


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, default: float = 60.0, short: float = 5.0,
                 is_short: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.default = default
        self.short = short
        self.is_short = is_short or discovery_paths("")
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[float, _Deadlines]] = weakref.WeakKeyDictionary()
        # The loop of the previous request, nearly always this request's too: found
        # without the weak dictionary's lookup (its loop only weakly referenced as well).
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop],
                          dict[float, _Deadlines]] | None = None

    def _deadlines(self, loop: asyncio.AbstractEventLoop, seconds: float) -> _Deadlines:
        last = self._last
        if last is not None and last[0]() is loop:
            queues = last[1]
        else:
            found_queues = self._by_loop.get(loop)
            if found_queues is None:
                found_queues = self._by_loop[loop] = {}
            queues = found_queues
            self._last = (weakref.ref(loop), queues)
        found = queues.get(seconds)
        if found is None:
            found = queues[seconds] = _Deadlines(loop, seconds)
        return found

    def timeout_for(self, scope: Scope) -> float:
        return self.short if self.is_short(route_path(scope)) else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.timeout_for(scope)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("the timeout middleware must run inside a task")
        cancelling = task.cancelling()
        ex, send = exchange(scope, send)  # a started response is let finish
        watch = self._deadlines(loop, seconds).watch(task, ex)
        timed_out = False
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError as exc:
            if not watch.expired:
                raise
            watch.expired = False  # uncancelled here, not again below
            if task.uncancel() > cancelling:
                raise  # cancelled from elsewhere too: that one wins
            if ex.started:
                raise TimeoutError from exc
            timed_out = True
        finally:
            watch.done = True
            if watch.expired:  # the handler absorbed the cancellation: balance it
                task.uncancel()
        if timed_out:
            log.warning("request timed out and was cancelled",
                        extra={"path": scope["path"], "timeout_s": seconds})
            err = CedrosError(ErrorCode.SERVICE_UNAVAILABLE,
                              "The request took too long and was stopped. Please try again.",
                              {"timeoutSeconds": seconds})
            await send_error(scope, receive, send, err, status=TIMEOUT_STATUS)
