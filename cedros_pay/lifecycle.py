"""Resources closed in reverse order of opening (spec 01), within a time budget."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("cedros_pay.lifecycle")

Closer = Callable[[], Awaitable[None]]


class Lifecycle:
    """Collects closers as resources open; `close()` runs them last-in, first-out.

    A closer that fails or overruns is logged and skipped so the rest still close.
    """

    def __init__(self) -> None:
        self._closers: list[tuple[str, Closer]] = []

    def push(self, name: str, closer: Closer) -> None:
        self._closers.append((name, closer))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._closers]

    async def close(self, budget: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        while self._closers:
            name, closer = self._closers.pop()
            remaining = max(0.1, deadline - loop.time())
            try:
                await asyncio.wait_for(closer(), timeout=remaining)
                log.debug("closed resource", extra={"resource": name})
            except TimeoutError:
                log.error("resource did not close in time", extra={"resource": name})
            except Exception:
                log.exception("resource failed to close", extra={"resource": name})
