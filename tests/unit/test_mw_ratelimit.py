"""Token buckets (spec 13): the arithmetic, the memory store, and the Redis store."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from cedros_pay.rest.middleware.state import MemoryRateLimiter, RedisRateLimiter
from cedros_pay.rest.middleware.state.buckets import Bucket, BucketState, draw, refill

Pair = tuple[RedisRateLimiter, RedisRateLimiter]


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_new_bucket_is_full_and_refills_one_token_per_interval() -> None:
    b = Bucket("ip", "1.2.3.4", limit=60, window=60.0)
    assert b.refill_interval == 1.0
    assert refill(None, b, now=5.0) == 60
    assert refill(BucketState(tokens=0.0, updated=10.0), b, now=12.5) == 2.5
    # Bursts do not accumulate beyond the limit.
    assert refill(BucketState(tokens=59.0, updated=0.0), b, now=10_000.0) == 60


def test_draw_takes_from_every_bucket_or_from_none() -> None:
    wallet = Bucket("wallet", "W", limit=2, window=60.0)
    glob = Bucket("global", "", limit=100, window=60.0)
    levels, verdict = draw([50.0, 0.4], [glob, wallet])
    assert not verdict.allowed and verdict.denied_by == "wallet"
    assert levels == [50.0, 0.4]  # the global token was not spent
    assert verdict.limit == 2 and verdict.remaining == 0
    assert verdict.retry_after == pytest.approx(0.6 * 30.0)
    assert verdict.retry_after_seconds == 18
    levels, verdict = draw([50.0, 1.5], [glob, wallet])
    assert verdict.allowed and levels == [49.0, 0.5]
    assert (verdict.limit, verdict.remaining) == (2, 0)  # the tightest bucket is reported


async def test_memory_limiter_allows_a_burst_then_one_per_interval() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(clock=clock)
    bucket = [Bucket("ip", "a", limit=3, window=3.0)]
    results = [(await limiter.acquire(bucket)).allowed for _ in range(4)]
    assert results == [True, True, True, False]
    clock.now += 0.5
    assert not (await limiter.acquire(bucket)).allowed
    clock.now += 0.5
    assert (await limiter.acquire(bucket)).allowed
    assert not (await limiter.acquire(bucket)).allowed


async def test_memory_limiter_agrees_with_the_reference_arithmetic() -> None:
    """Random bucket sets, times and clock steps (backwards too): every verdict is the one
    `refill` + `draw` give for the same states."""
    rng = random.Random(13)
    clock = FakeTime()
    limiter = MemoryRateLimiter(clock=clock)
    states: dict[str, BucketState] = {}
    kinds = [Bucket("global", "", 5, 2.0), Bucket("ip", "a", 3, 3.0),
             Bucket("ip", "b", 2, 1.0), Bucket("wallet", "W", 1, 4.0)]
    for _ in range(2000):
        clock.now += rng.choice([0.0, 0.0, 0.05, 0.3, 1.0, -0.2])
        buckets = rng.sample(kinds, rng.randint(1, 3))
        levels = [refill(states.get(b.name), b, clock.now) for b in buckets]
        after, expected = draw(levels, buckets)
        for b, level in zip(buckets, after, strict=True):
            states[b.name] = BucketState(tokens=level, updated=clock.now)
        assert await limiter.acquire(buckets) == expected


async def test_memory_limiter_evicts_least_recently_used_before_adding() -> None:
    limiter = MemoryRateLimiter(max_entries=3, clock=FakeTime())
    for key in "abc":
        await limiter.acquire([Bucket("ip", key, 1, 60.0)])
    await limiter.acquire([Bucket("ip", "a", 1, 60.0)])  # a is now the most recent
    await limiter.acquire([Bucket("ip", "d", 1, 60.0)])  # evicts b
    assert len(limiter) == 3
    assert not (await limiter.acquire([Bucket("ip", "a", 1, 60.0)])).allowed
    assert (await limiter.acquire([Bucket("ip", "b", 1, 60.0)])).allowed  # came back full


async def test_memory_sweep_drops_buckets_that_are_full_again() -> None:
    clock = FakeTime()
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.acquire([Bucket("ip", "old", 10, 60.0)])
    clock.now += 61
    await limiter.acquire([Bucket("ip", "new", 10, 60.0)])
    assert await limiter.sweep() == 1
    assert len(limiter) == 1


@pytest.fixture
async def redis_limiters(redis_url: str) -> AsyncIterator[Pair]:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    a, b = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    yield RedisRateLimiter(a, prefix), RedisRateLimiter(b, prefix)
    keys = [k async for k in a.scan_iter(match=prefix + "*")]
    if keys:
        await a.delete(*keys)
    await a.aclose()
    await b.aclose()


@pytest.mark.redis
async def test_redis_buckets_are_shared_between_clients(redis_limiters: Pair) -> None:
    one, two = redis_limiters
    bucket = [Bucket("global", "", limit=5, window=60.0)]
    allowed = [(await (one if i % 2 else two).acquire(bucket)).allowed for i in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    refused = await one.acquire(bucket)
    assert refused.denied_by == "global" and 0 < refused.retry_after <= 12.0


@pytest.mark.redis
async def test_redis_draw_is_atomic_under_concurrency(redis_limiters: Pair) -> None:
    one, two = redis_limiters
    bucket = [Bucket("ip", "9.9.9.9", limit=20, window=3600.0)]
    verdicts = await asyncio.gather(*[(one, two)[i % 2].acquire(bucket) for i in range(60)])
    assert sum(v.allowed for v in verdicts) == 20


@pytest.mark.redis
async def test_redis_refusal_spends_no_token_from_other_buckets(redis_limiters: Pair) -> None:
    one, _ = redis_limiters
    glob = Bucket("global", "", limit=10, window=3600.0)
    wallet = Bucket("wallet", "W", limit=1, window=3600.0)
    assert (await one.acquire([glob, wallet])).allowed
    for _ in range(5):
        assert (await one.acquire([glob, wallet])).denied_by == "wallet"
    other = [await one.acquire([glob]) for _ in range(10)]
    assert sum(v.allowed for v in other) == 9  # 10 - the one allowed draw above
