"""Injected transport failures, so client retry paths can be tested against a real server."""

from __future__ import annotations

import threading


class Faults:
    """Answer the next N HTTP requests with an error status (429 by default) instead of RPC.

    Thread-safe: tests flip it from their own thread while the server runs in another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._status = 429

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
