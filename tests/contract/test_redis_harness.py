"""The Redis harness gives the session a real server."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.redis


async def test_redis_url_answers_ping_and_stores_keys(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    key = f"harness:{uuid.uuid4().hex}"
    try:
        assert await client.ping() is True
        await client.set(key, b"value", ex=60)
        assert await client.get(key) == b"value"
    finally:
        await client.delete(key)
        await client.aclose()
