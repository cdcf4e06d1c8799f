"""A cheap, cached Solana `getHealth` probe for the health endpoint."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

# A probe must answer fast: an orchestrator's health check has its own short timeout.
PROBE_TIMEOUT = 2.0


class RpcHealthProbe:
    """Asks the RPC node `getHealth` (through the server's one `SolanaRpc`, so behind the
    `solana_rpc` breaker: an open breaker reads as unhealthy without a request) at most
    once per `ttl` seconds.

    Health checks arrive every few seconds from orchestrators; caching keeps them from
    spending the RPC provider's rate limit.
    """

    def __init__(self, check: Callable[[float], Awaitable[bool]], ttl: float = 10.0,
                 refusing: Callable[[], bool] | None = None) -> None:
        self._check = check  # SolanaRpc.health: one attempt, False on any fault
        self._ttl = ttl
        self._refusing = refusing  # the breaker is open: unhealthy now, whatever was cached
        self._checked_at = float("-inf")
        self._last = False

    async def __call__(self) -> bool:
        if self._refusing is not None and self._refusing():
            return False
        if time.monotonic() - self._checked_at < self._ttl:
            return self._last
        self._last = await self._check(PROBE_TIMEOUT)
        self._checked_at = time.monotonic()
        return self._last
