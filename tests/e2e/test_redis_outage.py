"""Redis down with `redis.url` set, against a real `cedros-pay serve` and a real Redis that
the test stops and starts again on the same port (its own server, so no other test is
disturbed): rate limits fail open with one warning, keyed requests get 503
`service_unavailable` and run nothing, and both recover by themselves once Redis is back."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.process import (
    ServeProcess,
    ServiceUnavailable,
    clean_env,
    free_port,
    log_tail,
    terminate,
    wait_until,
)
from support.redis import find_binary, ping

pytestmark = pytest.mark.redis

PARTNER_KEY = "redis-outage-partner-key"  # partner tier: these requests spend no tokens
PARTNER = {"X-API-Key": PARTNER_KEY}
PER_IP = 4
CART = {"items": [{"resource": "p-article", "quantity": 1}]}
OTHER_CART = {"items": [{"resource": "p-article", "quantity": 2}]}

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
storage: {{backend: sqlite, file_path: "{db}"}}
redis: {{url: "redis://127.0.0.1:{port}/0"}}
rate_limit:
  global: {{limit: 100000, window: 1h}}
  per_ip: {{limit: {per_ip}, window: 1h}}
api_key: {{enabled: true, keys: {{{key}: partner}}}}
logging: {{level: warn}}
"""


class OwnRedis:
    """A redis-server on a fixed port that can be stopped and started again there."""

    def __init__(self, workdir: Path) -> None:
        binary = find_binary()
        if binary is None:
            raise ServiceUnavailable("no redis-server binary: apt-get install redis-server")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.workdir / "redis.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                 "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=clean_env(), start_new_session=True)
        wait_until(lambda: ping("127.0.0.1", self.port), process=self.process, timeout=30,
                   what="redis-server", log=log)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, first=signal.SIGTERM)
            self.process = None


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ServeProcess, OwnRedis, Path]]:
    (tmp_path / "redis").mkdir()
    redis = OwnRedis(tmp_path / "redis")
    redis.start()
    db = tmp_path / "cedros.db"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(db=db, port=redis.port, per_ip=PER_IP, key=PARTNER_KEY))
    server = ServeProcess(config, tmp_path, "serve", health_headers=PARTNER)
    try:
        server.started()
        yield server, redis, db
    finally:
        code = server.stop(signal.SIGTERM)
        redis.stop()
    assert code == 0, log_tail(server.log)
    assert "Traceback" not in server.log.read_text(), log_tail(server.log)


def carts(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("SELECT count(*) FROM cart_quotes").fetchone()[0]
        return count


def warnings(server: ServeProcess, text: str) -> int:
    return sum(text in line for line in server.log.read_text().splitlines())


def quote(client: httpx.Client, server: ServeProcess, key: str | None,
          body: dict[str, object] = CART) -> httpx.Response:
    headers = {**PARTNER, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"{server.url}/paywall/v1/cart/quote", json=body, headers=headers)


def products(client: httpx.Client, server: ServeProcess) -> httpx.Response:
    return client.get(f"{server.url}/paywall/v1/products")


def test_redis_down_fails_rate_limits_open_refuses_keyed_requests_and_recovers(
        world: tuple[ServeProcess, OwnRedis, Path]) -> None:
    server, redis, db = world
    with httpx.Client(timeout=30) as client:
        # Redis up: replay, reuse refused, limits enforced.
        first = quote(client, server, "order-1")
        assert first.status_code == 200, first.text
        assert quote(client, server, "order-1").headers["X-Idempotency-Replay"] == "true"
        reused = quote(client, server, "order-1", OTHER_CART)
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        limited = [products(client, server) for _ in range(PER_IP + 1)]
        assert [r.status_code for r in limited] == [200] * PER_IP + [429]
        assert carts(db) == 1

        redis.stop()
        # Rate limits fail open: the exhausted IP bucket lets every request through.
        down = [products(client, server) for _ in range(15)]
        assert [r.status_code for r in down] == [200] * 15
        assert all("x-ratelimit-limit" not in r.headers for r in down)
        # Keyed requests are refused, a known key and a new one alike, and run nothing.
        for key in ("order-1", "order-2", "order-2", "order-3"):
            refused = quote(client, server, key)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "service_unavailable"
            assert refused.json()["error"]["retryable"] is True
            assert refused.headers["Retry-After"] == "1"
        assert carts(db) == 1
        unkeyed = quote(client, server, None)  # without a key nothing was promised
        assert unkeyed.status_code == 200 and carts(db) == 2
        time.sleep(1.2)  # a probe falls due: still down, still one warning each
        assert quote(client, server, "order-4").status_code == 503
        assert products(client, server).status_code == 200
        assert warnings(server, "rate limiter unreachable") == 1
        assert warnings(server, "idempotency store unreachable") == 1

        redis.start()  # the same port, empty (persistence is off)
        deadline = time.monotonic() + 20
        while (back := quote(client, server, "order-5")).status_code == 503:
            assert time.monotonic() < deadline, "idempotency did not recover"
            time.sleep(0.2)
        assert back.status_code == 200, back.text
        assert quote(client, server, "order-5").headers["X-Idempotency-Replay"] == "true"
        assert carts(db) == 3
        while "x-ratelimit-limit" not in (resp := products(client, server)).headers:
            assert time.monotonic() < deadline, "rate limiting did not recover"
            time.sleep(0.2)
        # Limiting resumes on the new server's (fresh) bucket.
        left = int(resp.headers["X-RateLimit-Remaining"])
        after = [products(client, server).status_code for _ in range(left + 1)]
        assert after == [200] * left + [429]
        assert warnings(server, "rate limiter reachable again") == 1
        assert warnings(server, "idempotency store reachable again") == 1
        assert warnings(server, "unreachable") == 2
