"""Cached idempotent responses in Redis, shared by every instance.

A claim is `SET NX PX` on `<key>:claim` holding a random token and the request's
fingerprint (`<token>.<fingerprint>`, the value being the token); only its holder can
complete or release it (a script compares the token), so a request whose lease lapsed
cannot clear a newer holder's claim. Completing stores the response before dropping the
claim, in one script, so a waiter never sees neither.
"""

from __future__ import annotations

import math
import secrets

from redis.asyncio import Redis

from cedros_pay.rest.middleware.state.responses import CachedResponse

_COMPLETE = """
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisIdempotencyStore:
    def __init__(self, client: Redis, prefix: str = "cedros:") -> None:
        self._client = client
        self._prefix = f"{prefix}idem:"
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    def _keys(self, key: str) -> tuple[str, str]:
        base = self._prefix + key
        return base, base + ":claim"

    async def get(self, key: str) -> CachedResponse | None:
        raw = await self._client.get(self._keys(key)[0])
        if raw is None:
            return None
        return CachedResponse.loads(raw if isinstance(raw, bytes) else raw.encode())

    async def claim(self, key: str, lease: float, fingerprint: str = "") -> str | None:
        token = f"{secrets.token_hex(8)}.{fingerprint}"
        ok = await self._client.set(self._keys(key)[1], token, nx=True, px=_ms(lease))
        return token if ok else None

    async def claimant(self, key: str) -> str | None:
        raw = await self._client.get(self._keys(key)[1])
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        return value.partition(".")[2]

    async def complete(self, key: str, token: str, response: CachedResponse,
                       ttl: float) -> None:
        await self._complete(keys=list(self._keys(key)),
                             args=[token, response.dumps(), _ms(ttl)])

    async def release(self, key: str, token: str) -> None:
        await self._release(keys=[self._keys(key)[1]], args=[token])

    async def delete(self, key: str) -> None:
        await self._client.delete(*self._keys(key))
