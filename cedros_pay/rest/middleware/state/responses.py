"""Idempotent replay (spec 10): the cached response and the store seam.

Spec 10's store has Get/Set/Delete. A shared store also needs a *claim*: without one,
two requests with the same key arriving together (at one instance or at two) would both
miss the cache and both run. The first to claim a key runs the handler; the others wait
for its response or give up with 409. A claim is a lease, so a process that dies
mid-request frees its keys when the lease runs out.

Both the claim and the cached response carry the request's fingerprint (a SHA-256 of its
method, path, tenant and body), so the key can be checked against the request that first
used it while that one is running and after it finished.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

import orjson


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """What a replay sends: the first response's status, headers and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    cached_at: float = 0.0  # unix seconds
    fingerprint: str = ""  # of the request that produced it; "" when none was taken

    def dumps(self) -> bytes:
        return orjson.dumps({
            "status": self.status, "headers": [list(h) for h in self.headers],
            "body": base64.b64encode(self.body).decode(), "cached_at": self.cached_at,
            "fingerprint": self.fingerprint,
        })

    @classmethod
    def loads(cls, raw: bytes) -> CachedResponse:
        data = orjson.loads(raw)
        return cls(status=int(data["status"]),
                   headers=tuple((str(k), str(v)) for k, v in data["headers"]),
                   body=base64.b64decode(data["body"]), cached_at=float(data["cached_at"]),
                   fingerprint=str(data.get("fingerprint", "")))


class IdempotencyStore(Protocol):
    async def get(self, key: str) -> CachedResponse | None:
        """The cached response for `key`, unless absent or expired."""
        ...

    async def claim(self, key: str, lease: float, fingerprint: str = "") -> str | None:
        """Take the right to run `key` for `lease` seconds; a token, or None if held.
        The claim remembers `fingerprint` for `claimant`."""
        ...

    async def claimant(self, key: str) -> str | None:
        """The fingerprint of the live claim on `key` ("" if it has none); None if the key
        is not claimed."""
        ...

    async def complete(self, key: str, token: str, response: CachedResponse,
                       ttl: float) -> None:
        """Cache `response` for `ttl` seconds, then drop the claim (in that order, so a
        waiter that finds the claim gone always finds the response)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Drop the claim without caching (the request failed: a retry may run)."""
        ...

    async def delete(self, key: str) -> None: ...
