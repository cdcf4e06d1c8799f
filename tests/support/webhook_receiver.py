"""A merchant's webhook endpoint for tests: a real HTTP server on 127.0.0.1 that records
every delivery, answers with scripted statuses (fail N times, then 200), can hang, and
can be down (its port closed) and come back up on the same port.

It runs in a thread, so in-process apps and `cedros-pay serve` subprocesses alike reach
it over real TCP.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Delivery:
    at: float  # time.monotonic() when the request arrived
    wall: float  # time.time() then, to compare with a payload's timestamps
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class _Script:
    statuses: deque[int] = field(default_factory=deque)
    hang: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebhookReceiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.arrivals = 0  # requests received, counted before any scripted hang
        self._lock = threading.Condition()
        self._script = _Script()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cedros?token=secret-query"

    # --- scripting -------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._script.statuses.extend([status] * n)

    def hang_for(self, seconds: float) -> None:
        """Hold every request `seconds` before answering (a slow or stuck merchant)."""
        self._script.hang = seconds

    # --- lifecycle -------------------------------------------------------------------

    def up(self) -> WebhookReceiver:
        if self._server is not None:
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived, wall = time.monotonic(), time.time()
                with receiver._lock:
                    receiver.arrivals += 1
                    receiver._lock.notify_all()
                if receiver._script.hang:
                    time.sleep(receiver._script.hang)
                with receiver._lock:
                    status = (receiver._script.statuses.popleft()
                              if receiver._script.statuses else 200)
                    receiver.deliveries.append(Delivery(
                        arrived, wall, self.path, {k.lower(): v for k, v in self.headers.items()},
                        body, status))
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Close the port: connections are refused until `up()`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- reading ---------------------------------------------------------------------

    def wait_for_arrivals(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` requests arrived, answered or not (e.g. still hanging)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.arrivals < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {self.arrivals}")
                self._lock.wait(left)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until at least `count` deliveries arrived; all of them so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} deliveries, got {len(self.deliveries)}")
                self._lock.wait(left)
            return list(self.deliveries)

    async def arrived(self, count: int, within: float = 10.0) -> list[Delivery]:
        """`wait_for` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, count, within)

    def wait_for_match(self, match: Callable[[Delivery], bool], count: int = 1,
                       timeout: float = 10.0) -> list[Delivery]:
        """Block until at least `count` deliveries satisfy `match` (a receiver shared by
        several tests: each waits for its own); those deliveries."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(found := [d for d in self.deliveries if match(d)]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} matching deliveries, "
                                         f"got {len(found)}")
                self._lock.wait(left)
            return found

    async def matching(self, match: Callable[[Delivery], bool], count: int = 1,
                       within: float = 10.0) -> list[Delivery]:
        """`wait_for_match` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_match, match, count, within)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)
