"""Cached idempotent responses in memory: LRU of 10,000, swept every 5 minutes (spec 10).

Lost on restart and private to one process; use the Redis store for several instances.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from cedros_pay.rest.middleware.state.responses import CachedResponse


class MemoryIdempotencyStore:
    def __init__(self, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._responses: OrderedDict[str, tuple[float, CachedResponse]] = OrderedDict()
        self._claims: dict[str, tuple[str, float, str]] = {}  # token, until, fingerprint

    def __len__(self) -> int:
        return len(self._responses)

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._responses.get(key)
        if entry is None:
            return None
        expires, response = entry
        if expires <= self._clock():
            del self._responses[key]
            return None
        self._responses.move_to_end(key)
        return response

    async def claim(self, key: str, lease: float, fingerprint: str = "") -> str | None:
        now = self._clock()
        held = self._claims.get(key)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._claims[key] = (token, now + lease, fingerprint)
        return token

    async def claimant(self, key: str) -> str | None:
        held = self._claims.get(key)
        return held[2] if held is not None and held[1] > self._clock() else None

    async def complete(self, key: str, token: str, response: CachedResponse,
                       ttl: float) -> None:
        if key in self._responses:
            self._responses.move_to_end(key)
        else:
            while len(self._responses) >= self._max:  # evict before adding (spec 10)
                self._responses.popitem(last=False)
        self._responses[key] = (self._clock() + ttl, response)
        await self.release(key, token)

    async def release(self, key: str, token: str) -> None:
        held = self._claims.get(key)
        if held is not None and held[0] == token:
            del self._claims[key]

    async def delete(self, key: str) -> None:
        self._responses.pop(key, None)
        self._claims.pop(key, None)

    async def sweep(self) -> int:
        """Remove expired responses and lapsed claims; how many responses went."""
        now = self._clock()
        gone = [k for k, (expires, _) in self._responses.items() if expires <= now]
        for k in gone:
            del self._responses[k]
        for k in [k for k, (_, until, _) in self._claims.items() if until <= now]:
            del self._claims[k]
        return len(gone)
