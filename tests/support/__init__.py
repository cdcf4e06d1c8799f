"""Real backing services for the test suite (DESIGN §5).

`postgres.start_postgres()` and `redis.start_redis()` launch throwaway servers from the
Debian packages (or adopt the ones named by `CEDROS_TEST_POSTGRES_URL` /
`CEDROS_TEST_REDIS_URL`). `tests/conftest.py` turns them into pytest fixtures.
`served.served()` runs a real `cedros-pay serve` on SQLite or PostgreSQL for the payment
e2e tests (`process.ServeProcess` underneath).
"""

from .process import ServiceUnavailable

__all__ = ["ServiceUnavailable"]
