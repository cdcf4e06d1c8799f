"""Token buckets in Redis, so every instance draws from the same buckets.

One Lua script refills and draws from all of a request's buckets atomically, on the Redis
server's clock (`TIME`), so instances with drifting clocks still agree. A bucket key
expires once it would be full again: idle wallets and IPs cost no memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.asyncio import Redis

from cedros_pay.rest.middleware.state.buckets import Bucket, Verdict, draw

# KEYS: one per bucket. ARGV: limit, seconds per token, ttl ms -- three per bucket.
# Returns the refilled levels (as strings: Lua numbers would be truncated to integers),
# before this request's draw; the draw is taken only if every level is at least 1.
_DRAW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local ok = true
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local per_token = tonumber(ARGV[3 * i - 1])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(state[1])
  local updated = tonumber(state[2])
  if tokens == nil or updated == nil then
    tokens = limit
  else
    tokens = math.min(limit, tokens + math.max(0, now - updated) / per_token)
  end
  levels[i] = tokens
  if tokens < 1 then ok = false end
end
local out = {}
for i, key in ipairs(KEYS) do
  local left = levels[i]
  if ok then left = left - 1 end
  redis.call('HSET', key, 'tokens', string.format('%.17g', left),
             'updated', string.format('%.17g', now))
  redis.call('PEXPIRE', key, ARGV[3 * i])
  out[i] = string.format('%.17g', levels[i])
end
return out
"""


class RedisRateLimiter:
    def __init__(self, client: Redis, prefix: str = "cedros:") -> None:
        self._client = client
        self._prefix = f"{prefix}rl:"
        self._script = client.register_script(_DRAW)

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict | None:
        return None  # the buckets live in Redis: always a round trip

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        if not buckets:
            return draw([], [])[1]
        args: list[str | int | float] = []
        for b in buckets:
            args += [b.limit, repr(b.refill_interval), math.ceil(b.window * 1000) + 1000]
        raw = await self._script(keys=[self._prefix + b.name for b in buckets], args=args)
        levels = [float(v) for v in raw]
        return draw(levels, buckets)[1]
