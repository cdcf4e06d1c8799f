"""The rate-limit middleware (spec 10, 13): buckets per request, tiers, 429 headers."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.observability.hooks import BaseHook, RateLimitedEvent
from cedros_pay.rest.middleware import (
    APIKey,
    Gate,
    RateLimit,
    RateLimitRules,
    RealIPMiddleware,
    Rule,
)
from cedros_pay.rest.middleware.state import MemoryRateLimiter
from cedros_pay.rest.middleware.state.buckets import Bucket, Verdict

W1 = "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ"
W2 = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Rejections(BaseHook):
    def __init__(self) -> None:
        self.events: list[RateLimitedEvent] = []

    def on_rate_limited(self, event: RateLimitedEvent) -> None:
        self.events.append(event)


def limited(rules: RateLimitRules, hooks: BaseHook | None = None,
            keys: dict[str, str] | None = None) -> ASGIApp:
    inner = Gate(ok, [RateLimit(limiter=MemoryRateLimiter(), rules=rules, hooks=hooks)])
    return RealIPMiddleware(Gate(inner, [APIKey(enabled=True, keys=keys or {})]))


async def hit(app: ASGIApp, n: int, headers: dict[str, str] | None = None,
              client: str = "203.0.113.7", path: str = "/") -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=(client, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return [await c.get(path, headers=headers) for _ in range(n)]


async def test_429_carries_the_envelope_and_rate_limit_headers() -> None:
    hooks = Rejections()
    app = limited(RateLimitRules(per_ip=Rule(limit=2, window=60)), hooks)
    first, second, third = await hit(app, 3)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert third.status_code == 429
    err = third.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and err["details"]["limitType"] == "ip"
    assert third.headers["Retry-After"] == "30"  # one token per 30 s
    assert third.headers["X-RateLimit-Limit"] == "2"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    reset = int(third.headers["X-RateLimit-Reset"])
    assert time.time() + 25 < reset <= time.time() + 31
    assert hooks.events == [RateLimitedEvent("ip", "free")]


async def test_wallet_buckets_come_from_headers_and_query() -> None:
    app = limited(RateLimitRules(per_wallet=Rule(limit=1, window=60)))
    assert [r.status_code for r in await hit(app, 2, {"X-Wallet": W1})] == [200, 429]
    assert [r.status_code for r in await hit(app, 1, {"X-Signer": W1})] == [429]
    assert [r.status_code for r in await hit(app, 1, path=f"/?wallet={W1}")] == [429]
    assert [r.status_code for r in await hit(app, 1, {"X-Wallet": W2})] == [200]
    # Not an address: no wallet bucket, so no wallet limit either.
    assert [r.status_code for r in await hit(app, 3, {"X-Wallet": "junk"})] == [200] * 3


async def test_new_wallets_do_not_dodge_the_ip_limit() -> None:
    app = limited(RateLimitRules(per_wallet=Rule(10, 60), per_ip=Rule(2, 60)))
    codes = [(await hit(app, 1, {"X-Wallet": w}))[0].status_code for w in (W1, W2, W1)]
    assert codes == [200, 200, 429]


async def test_spoofed_forwarding_header_does_not_change_the_ip_bucket() -> None:
    app = limited(RateLimitRules(per_ip=Rule(1, 60)))
    codes = [(await hit(app, 1, {"X-Forwarded-For": f"1.1.1.{i}"}))[0].status_code
             for i in range(3)]
    assert codes == [200, 429, 429]


async def test_global_limit_counts_every_client() -> None:
    app = limited(RateLimitRules(global_=Rule(3, 60), per_ip=Rule(100, 60)))
    codes = [(await hit(app, 1, client=f"198.51.100.{i}"))[0].status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


async def test_tier_exemptions_of_spec13() -> None:
    keys = {"ent": "enterprise", "part": "partner", "pro": "pro"}
    rules = RateLimitRules(global_=Rule(4, 60), per_ip=Rule(1, 60), per_wallet=Rule(1, 60))
    app = limited(rules, keys=keys)
    pro = await hit(app, 2, {"X-API-Key": "pro", "X-Wallet": W1})
    assert [r.status_code for r in pro] == [200, 429]  # pro: standard limits
    # enterprise: past its wallet and IP limits, until the global one (4, one used by pro;
    # the refused request spent no global token).
    ent = await hit(app, 4, {"X-API-Key": "ent", "X-Wallet": W1})
    assert [r.status_code for r in ent] == [200, 200, 200, 429]
    assert ent[3].json()["error"]["details"]["limitType"] == "global"
    part = await hit(app, 5, {"X-API-Key": "part"})
    assert all(r.status_code == 200 for r in part)  # partner: no limits at all


class Down:
    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict | None:
        return None  # as Redis: every draw is a round trip

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        raise ConnectionError("redis down")


async def test_an_unavailable_limiter_lets_requests_through() -> None:
    app = Gate(ok, [RateLimit(limiter=Down(), rules=RateLimitRules(per_ip=Rule(1, 60)))])
    assert [r.status_code for r in await hit(app, 3)] == [200] * 3
