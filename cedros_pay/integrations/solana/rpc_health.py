"""A cheap, cached Solana `getHealth` probe for the health endpoint."""

from __future__ import annotations

import time

import httpx


class RpcHealthProbe:
    """Asks the RPC node `getHealth` at most once per `ttl` seconds.

    Health checks arrive every few seconds from orchestrators; caching keeps them from
    spending the RPC provider's rate limit.
    """

    def __init__(self, url: str, client: httpx.AsyncClient, ttl: float = 10.0) -> None:
        self._url = url
        self._client = client
        self._ttl = ttl
        self._checked_at = float("-inf")
        self._last = False

    async def __call__(self) -> bool:
        if time.monotonic() - self._checked_at < self._ttl:
            return self._last
        try:
            resp = await self._client.post(
                self._url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=2.0)
            self._last = resp.status_code == 200 and resp.json().get("result") == "ok"
        except (httpx.HTTPError, ValueError):
            self._last = False
        self._checked_at = time.monotonic()
        return self._last
