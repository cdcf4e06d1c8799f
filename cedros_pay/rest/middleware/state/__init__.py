"""Where the rate-limit and idempotency layers keep their state: the seams they draw on
(`buckets.RateLimiter`, `responses.IdempotencyStore`) beside the backends that fill them,
one process (memory) or every instance sharing one Redis."""

from cedros_pay.rest.middleware.state.memory_limiter import MemoryRateLimiter
from cedros_pay.rest.middleware.state.memory_responses import MemoryIdempotencyStore
from cedros_pay.rest.middleware.state.redis_limiter import RedisRateLimiter
from cedros_pay.rest.middleware.state.redis_responses import RedisIdempotencyStore

__all__ = ["MemoryIdempotencyStore", "MemoryRateLimiter", "RedisIdempotencyStore",
           "RedisRateLimiter"]
