"""Injected transport failures, so client retry and recovery paths can be tested against a
real server: error statuses (429 / 503), slow or hung answers, dropped WebSockets.

`Faults.wrap(app)` puts the slow-answer and WebSocket faults in front of the RPC app (the
error statuses are served by the app itself, `rpc.create_rpc_app`). While nothing is armed
the wrapper passes HTTP requests straight through; a WebSocket's messages cost one flag
check each.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The close code a dropped WebSocket gets: 1011, "the server hit an unexpected condition".
_DROP_CODE = 1011


class Faults:
    """Fault switches, flipped by tests from their own thread while the server runs in
    another (every switch is thread-safe).

    - `fail_next(n, status)`: the next n HTTP requests answer `status` instead of RPC;
    - `hold(seconds, methods=...)`: requests calling one of `methods` (any, when None) wait
      `seconds` before they are served; longer than the client's timeout, that is a timeout
      (the request is still served afterwards, as a node that got the request late would);
    - `drop_websockets(True)`: a WebSocket connection is closed (1011) instead of sending a
      signature notification, so a client loses it mid-confirmation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._status = 429
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._hold_seconds = 0.0
        self._hold_methods: frozenset[str] | None = None
        self._holding = False
        self._held_now = 0
        self._held_total = 0
        self._drop_ws = False
        self._dropped = 0

    # --- error statuses ----------------------------------------------------------------

    def fail_next(self, count: int, status: int = 429) -> None:
        with self._lock:
            self._remaining = count
            self._status = status

    @property
    def pending(self) -> int:
        with self._lock:
            return self._remaining

    def take(self) -> int | None:
        """The status to fail this request with, or None to serve it normally."""
        with self._lock:
            if self._remaining <= 0:
                return None
            self._remaining -= 1
            return self._status

    # --- slow answers ------------------------------------------------------------------

    def hold(self, seconds: float, methods: Iterable[str] | None = None) -> None:
        """Delay every request that calls one of `methods` by `seconds` (until `release`)."""
        with self._lock:
            self._hold_seconds = seconds
            self._hold_methods = frozenset(methods) if methods is not None else None
            self._holding = True

    def release(self) -> None:
        """Stop holding; requests held now are served at once."""
        with self._lock:
            self._holding = False
            waiters = list(self._waiters)
        for loop, released in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(released.set)

    @property
    def held(self) -> int:
        """Requests being held right now."""
        with self._lock:
            return self._held_now

    @property
    def held_total(self) -> int:
        """Requests held since the sandbox started."""
        with self._lock:
            return self._held_total

    def _hold_for(self, methods: list[str]) -> float | None:
        with self._lock:
            if not self._holding:
                return None
            wanted = self._hold_methods
            if wanted is not None and not any(m in wanted for m in methods):
                return None
            self._held_now += 1
            self._held_total += 1
            return self._hold_seconds

    async def _wait(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        released = asyncio.Event()
        waiter = (loop, released)
        with self._lock:
            self._waiters.add(waiter)
            holding = self._holding  # released between _hold_for and now
        try:
            if holding:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), seconds)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
                self._held_now -= 1

    # --- WebSockets --------------------------------------------------------------------

    def drop_websockets(self, on: bool = True) -> None:
        with self._lock:
            self._drop_ws = on

    @property
    def dropped(self) -> int:
        """WebSocket connections dropped so far."""
        with self._lock:
            return self._dropped

    def _drop(self, message: Message) -> bool:
        if not self._drop_ws or message["type"] != "websocket.send":
            return False
        data = message.get("text") or message.get("bytes") or b""
        raw = data.encode() if isinstance(data, str) else data
        if b"signatureNotification" not in raw:
            return False
        with self._lock:
            self._dropped += 1
        return True

    # --- the ASGI hook -----------------------------------------------------------------

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """`app` behind the hold and WebSocket switches."""

        async def faulty(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                await app(scope, receive, self._websocket_send(send))
            elif scope["type"] == "http" and self._holding:
                body = await _read_body(receive)
                hold = self._hold_for(_methods(body))
                if hold is not None:
                    await self._wait(hold)
                await app(scope, _replay(body, receive), send)
            else:
                await app(scope, receive, send)

        return faulty

    def _websocket_send(self, send: Send) -> Send:
        closed = False

        async def faulty_send(message: Message) -> None:
            nonlocal closed
            if closed:
                return  # the app writes on; the connection is gone
            if self._drop(message):
                closed = True
                await send({"type": "websocket.close", "code": _DROP_CODE})
                return
            await send(message)

        return faulty_send


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _methods(body: bytes) -> list[str]:
    """The JSON-RPC method names a request body calls (single or batch)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    calls = doc if isinstance(doc, list) else [doc]
    return [c["method"] for c in calls if isinstance(c, dict) and isinstance(c.get("method"), str)]
