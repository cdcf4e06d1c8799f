"""Idempotency response caches: `MemoryIdempotencyStore` (one process) and
`RedisIdempotencyStore` (every instance sharing one Redis)."""

from cedros_pay.integrations.idempotency.memory import MemoryIdempotencyStore
from cedros_pay.integrations.idempotency.redis import RedisIdempotencyStore

__all__ = ["MemoryIdempotencyStore", "RedisIdempotencyStore"]
