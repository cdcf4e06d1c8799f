"""Idempotency stores: one contract for memory and Redis, plus the memory LRU (spec 10)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from cedros_pay.rest.middleware.state import MemoryIdempotencyStore, RedisIdempotencyStore
from cedros_pay.rest.middleware.state.responses import CachedResponse, IdempotencyStore

RESPONSE = CachedResponse(201, (("content-type", "application/json"), ("location", "/x")),
                          b'{"ok":true}', cached_at=1.5, fingerprint="ab" * 32)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[IdempotencyStore]:
    if request.param == "memory":
        yield MemoryIdempotencyStore()
        return
    url = request.getfixturevalue("redis_url")
    client = aioredis.from_url(url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    yield RedisIdempotencyStore(client, prefix)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def test_cached_response_round_trips_through_bytes() -> None:
    assert CachedResponse.loads(RESPONSE.dumps()) == RESPONSE
    # An entry written before fingerprints existed has none (and so matches no request).
    old = b'{"status":200,"headers":[],"body":"","cached_at":0}'
    assert CachedResponse.loads(old).fingerprint == ""


async def test_the_response_keeps_its_fingerprint(store: IdempotencyStore) -> None:
    token = await store.claim("f", lease=30, fingerprint="ab" * 32)
    assert token is not None
    await store.complete("f", token, RESPONSE, ttl=60)
    got = await store.get("f")
    assert got is not None and got.fingerprint == "ab" * 32


async def test_the_claimant_is_the_live_claims_fingerprint(store: IdempotencyStore) -> None:
    assert await store.claimant("c") is None
    token = await store.claim("c", lease=30, fingerprint="cd" * 32)
    assert token is not None
    assert await store.claimant("c") == "cd" * 32
    assert await store.claim("c", lease=30, fingerprint="ef" * 32) is None
    assert await store.claimant("c") == "cd" * 32  # a refused claim changes nothing
    await store.release("c", token)
    assert await store.claimant("c") is None
    bare = await store.claim("c", lease=0.05)  # a claim without fingerprint (Stripe events)
    assert bare is not None and await store.claimant("c") == ""
    await asyncio.sleep(0.1)
    assert await store.claimant("c") is None  # lapsed with its lease


async def test_first_claim_wins_and_completion_caches(store: IdempotencyStore) -> None:
    token = await store.claim("k", lease=30)
    assert token is not None
    assert await store.claim("k", lease=30) is None  # held
    assert await store.get("k") is None
    await store.complete("k", token, RESPONSE, ttl=60)
    assert await store.get("k") == RESPONSE
    # The claim went with completion: a new claim is possible (the middleware checks the
    # cache first, so it never runs the handler again).
    assert await store.claim("k", lease=30) is not None


async def test_release_frees_the_key_only_for_its_holder(store: IdempotencyStore) -> None:
    token = await store.claim("k", lease=30)
    assert token is not None
    await store.release("k", "not-the-token")
    assert await store.claim("k", lease=30) is None
    await store.release("k", token)
    assert await store.claim("k", lease=30) is not None


async def test_lease_and_ttl_expire(store: IdempotencyStore) -> None:
    assert await store.claim("lease", lease=0.05) is not None
    await asyncio.sleep(0.1)
    token = await store.claim("lease", lease=30)
    assert token is not None
    await store.complete("lease", token, RESPONSE, ttl=0.05)
    await asyncio.sleep(0.1)
    assert await store.get("lease") is None


async def test_concurrent_claims_have_one_winner(store: IdempotencyStore) -> None:
    tokens = await asyncio.gather(*[store.claim("race", lease=30) for _ in range(25)])
    assert sum(t is not None for t in tokens) == 1


async def test_delete_removes_response_and_claim(store: IdempotencyStore) -> None:
    token = await store.claim("d", lease=30)
    assert token is not None
    await store.complete("d", token, RESPONSE, ttl=60)
    await store.delete("d")
    assert await store.get("d") is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_evicts_least_recently_used_before_adding() -> None:
    store = MemoryIdempotencyStore(max_entries=2, clock=Clock())
    for key in ("a", "b"):
        await store.complete(key, "t", RESPONSE, ttl=60)
    assert await store.get("a") is not None  # a is now the most recent
    await store.complete("c", "t", RESPONSE, ttl=60)
    assert len(store) == 2
    assert await store.get("b") is None
    assert await store.get("a") is not None and await store.get("c") is not None


async def test_memory_sweep_removes_expired_entries_and_lapsed_claims() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    await store.complete("short", "t", RESPONSE, ttl=10)
    await store.complete("long", "t", RESPONSE, ttl=1000)
    await store.claim("claimed", lease=10)
    clock.now = 100
    assert await store.sweep() == 1
    assert len(store) == 1
    assert await store.claim("claimed", lease=10) is not None
