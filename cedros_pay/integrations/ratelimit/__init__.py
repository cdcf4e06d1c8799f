"""Rate-limit bucket stores: `MemoryRateLimiter` (one process) and `RedisRateLimiter`
(every instance sharing one Redis)."""

from cedros_pay.integrations.ratelimit.memory import MemoryRateLimiter
from cedros_pay.integrations.ratelimit.redis import RedisRateLimiter

__all__ = ["MemoryRateLimiter", "RedisRateLimiter"]
