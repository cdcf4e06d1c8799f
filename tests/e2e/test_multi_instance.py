"""Several instances behave as one: two `cedros-pay serve` processes on different ports,
sharing one PostgreSQL database and one Redis, show one global rate limit, one idempotency
cache, and exactly-once execution of a request sent to both at once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from support.process import ServeProcess, log_tail, terminate, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SETUP_KEY = "multi-instance-partner-key"  # partner tier: setup traffic spends no tokens
PARTNER = {"X-API-Key": SETUP_KEY}
GLOBAL_LIMIT = 12
CART = {"items": [{"resource": "p-article", "quantity": 1}]}

CONFIG = """
x402:
  network: devnet
  payment_address: 7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ
  token_mint: 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU
  rpc_url: http://127.0.0.1:9/
paywall:
  product_source: yaml
  resources:
    p-article: {{description: Article, crypto_atomic_amount: 1000000, crypto_token: USDC}}
coupons: {{coupon_source: disabled}}
storage: {{backend: postgres, postgres_url: "{postgres_url}"}}
redis: {{url: "{redis_url}", key_prefix: "{prefix}"}}
rate_limit:
  global: {{limit: {limit}, window: 1h}}
  per_ip: {{limit: 1000, window: 1m}}
api_key: {{enabled: true, keys: {{{key}: partner}}}}
logging: {{level: warn}}
"""


@pytest.fixture
def instances(tmp_path: Path, postgres_url: str, redis_url: str
              ) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(postgres_url=postgres_url, redis_url=redis_url,
                                    prefix=f"mi{uuid.uuid4().hex[:8]}:", limit=GLOBAL_LIMIT,
                                    key=SETUP_KEY))
    pair = (ServeProcess(config, tmp_path, "a", health_headers=PARTNER),
            ServeProcess(config, tmp_path, "b", health_headers=PARTNER))
    try:
        for inst in pair:
            wait_until(inst.ready, process=inst.process, timeout=60, what="cedros-pay serve",
                       log=inst.log)
        yield pair
    finally:
        for inst in pair:
            terminate(inst.process, first=signal.SIGTERM)
    for inst in pair:
        assert inst.process.returncode == 0, log_tail(inst.log)
        assert "Traceback" not in inst.log.read_text()


async def count_carts(postgres_dsn: str) -> int:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM cart_quotes")
        return count
    finally:
        await conn.close()


async def test_two_processes_share_limits_replays_and_exactly_once_execution(
        instances: tuple[ServeProcess, ServeProcess], postgres_dsn: str, redis_url: str) -> None:
    a, b = instances
    async with httpx.AsyncClient(timeout=30) as client:
        # One idempotency cache: created at A, replayed by B.
        key = {"Idempotency-Key": "order-1", **PARTNER}
        created = await client.post(f"{a.url}/paywall/v1/cart/quote", json=CART, headers=key)
        replayed = await client.post(f"{b.url}/paywall/v1/cart/quote", json=CART, headers=key)
        assert created.status_code == 200, created.text
        assert "x-idempotency-replay" not in created.headers
        assert replayed.headers["X-Idempotency-Replay"] == "true"
        assert replayed.json() == created.json()
        assert await count_carts(postgres_dsn) == 1

        # Exactly once: the same new key sent to both processes at the same moment.
        race = {"Idempotency-Key": "order-2", **PARTNER}
        responses = await asyncio.gather(*[
            client.post(f"{inst.url}/paywall/v1/cart/quote", json=CART, headers=race)
            for inst in (a, b) * 5])
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
        assert len({r.json()["cartId"] for r in responses}) == 1
        assert sum(r.headers.get("X-Idempotency-Replay") == "true" for r in responses) == 9
        assert await count_carts(postgres_dsn) == 2

        # One global rate limit: the bucket is shared, whichever process answers.
        codes = [(await client.get(f"{inst.url}/paywall/v1/products")).status_code
                 for inst in (a, b) * GLOBAL_LIMIT]
        assert codes.count(200) == GLOBAL_LIMIT
        assert codes[:GLOBAL_LIMIT] == [200] * GLOBAL_LIMIT
        assert set(codes[GLOBAL_LIMIT:]) == {429}
        refused_at_b = await client.get(f"{b.url}/paywall/v1/products")
        assert refused_at_b.status_code == 429
        assert refused_at_b.json()["error"]["details"]["limitType"] == "global"
        assert int(refused_at_b.headers["Retry-After"]) > 0

    # The shared state is in Redis, under this deployment's prefix.
    config = (a.log.parent / "config.yaml").read_text()
    prefix = config.split('key_prefix: "', 1)[1].split('"', 1)[0]
    r = aioredis.from_url(redis_url)
    try:
        keys = {k async for k in r.scan_iter(match=prefix + "*")}
        assert f"{prefix}rl:global".encode() in keys
        assert f"{prefix}idem:req:default:order-1".encode() in keys
        await r.delete(*keys)
    finally:
        await r.aclose()
