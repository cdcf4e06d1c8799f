"""Waiting for a condition in tests: poll it, with a deadline only a hang runs into.

For conditions no event announces (a subscriber registered, a request held at the node,
a row written by another process). The deadline is generous on purpose: a loaded 2-core
CI machine must never break it, so it says nothing about speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], what: str = "the condition", *,
                     within: float = 10.0, interval: float = 0.01) -> None:
    """Await until `check()` (sync, or returning an awaitable) is truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
