"""Redis down: rate limits fail open and idempotency refuses, each logging the outage once
and probing Redis once per interval until it answers again."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.rest.middleware import (
    Gate,
    IdempotencyMiddleware,
    IdempotencyOptions,
    RateLimit,
    RateLimitRules,
    Rule,
)
from cedros_pay.rest.middleware.state import MemoryIdempotencyStore, MemoryRateLimiter
from cedros_pay.rest.middleware.state.buckets import Bucket, Verdict
from cedros_pay.rest.middleware.state.outage import Outage
from cedros_pay.rest.middleware.state.responses import CachedResponse

PATH = "/paywall/v1/cart/quote"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Switchable:
    """A Redis-like limiter (every draw a round trip) that can be taken down."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self._inner = MemoryRateLimiter()

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict | None:
        return None

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        self.calls += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")
        return await self._inner.acquire(buckets)


class SwitchableStore(MemoryIdempotencyStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def get(self, key: str) -> CachedResponse | None:
        self.calls += 1
        if self.down:
            raise ConnectionError("redis down")
        return await super().get(key)


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def get(app: ASGIApp, n: int, key: str | None = None) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    headers = {"Idempotency-Key": key} if key else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return [await c.post(PATH, headers=headers, json={}) for _ in range(n)]


def warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == logger and r.levelno == logging.WARNING]


async def test_rate_limits_fail_open_log_once_probe_and_resume(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = Switchable()
    check = RateLimit(limiter=limiter, rules=RateLimitRules(per_ip=Rule(2, 3600)),
                      outage=Outage(logging.getLogger("cedros_pay.ratelimit"),
                                    "rate limiter", probe=1.0, clock=clock))
    app = Gate(ok, [check])
    caplog.set_level(logging.WARNING)
    limiter.down = True
    down = await get(app, 20)
    assert [r.status_code for r in down] == [200] * 20  # fail open
    assert "x-ratelimit-limit" not in down[0].headers
    assert limiter.calls == 1  # one failure; the rest skipped Redis until the probe
    clock.now += 1.5
    await get(app, 5)
    assert limiter.calls == 2  # one probe per second while down
    assert warnings(caplog, "cedros_pay.ratelimit") == [
        "rate limiter unreachable: Error 111 connecting to 127.0.0.1:6399. Connection refused."]
    limiter.down = False
    clock.now += 1.5
    back = await get(app, 3)  # the probe finds Redis back: limiting resumes
    assert [r.status_code for r in back] == [200, 200, 429]
    assert back[0].headers["X-RateLimit-Limit"] == "2"
    assert warnings(caplog, "cedros_pay.ratelimit")[-1] == "rate limiter reachable again"
    assert len(warnings(caplog, "cedros_pay.ratelimit")) == 2


async def test_idempotency_refuses_while_down_without_a_round_trip_and_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = SwitchableStore()
    app = IdempotencyMiddleware(ok, store=store, options=IdempotencyOptions(
        routes=frozenset({("POST", PATH)})), outage=Outage(
            logging.getLogger("cedros_pay.idempotency"), "idempotency store", clock=clock))
    caplog.set_level(logging.WARNING)
    store.down = True
    refused = await get(app, 5, key="k1")
    assert {r.status_code for r in refused} == {503}
    assert {r.json()["error"]["code"] for r in refused} == {"service_unavailable"}
    assert refused[0].headers["Retry-After"] == "1"
    assert store.calls == 1
    assert [r.status_code for r in await get(app, 2)] == [200, 200]  # no key: served
    store.down = False
    assert (await get(app, 1, key="k1"))[0].status_code == 503  # no probe due yet
    clock.now += 1.5
    first, again = await get(app, 2, key="k1")
    assert first.status_code == 200 and "x-idempotency-replay" not in first.headers
    assert again.headers["X-Idempotency-Replay"] == "true"
    assert warnings(caplog, "cedros_pay.idempotency") == [
        "idempotency store unreachable: redis down", "idempotency store reachable again"]


def test_an_outage_probes_once_per_interval() -> None:
    clock = Clock()
    outage = Outage(logging.getLogger("t"), "x", probe=1.0, clock=clock)
    assert not outage.skip()
    outage.failed(ConnectionError("down"))
    assert outage.down and outage.skip()
    clock.now += 1.0
    assert not outage.skip()  # this caller probes
    assert outage.skip()  # the others do not, until the next interval
    outage.failed(ConnectionError("still down"))
    clock.now += 0.5
    assert outage.skip()
    outage.ok()
    assert not outage.down and not outage.skip()
