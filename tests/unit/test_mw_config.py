"""Config keys added for the middleware chain: Redis, shared-state backends, idempotency,
API versions, tenancy sources, per-route timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cedros_pay.config import (
    APIVersionConfig,
    Config,
    ConfigError,
    VersionDeprecation,
    load_config,
    validate_config,
)

BASE_ENV = {
    "CEDROS_X402_PAYMENT_ADDRESS": "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7",
    "CEDROS_X402_TOKEN_MINT": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
    "CEDROS_X402_RPC_URL": "https://rpc.example.com",
    "COUPON_SOURCE": "disabled",
    "CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite",
}


def load(env: dict[str, str] | None = None, yaml_text: str | None = None,
         tmp_path: Path | None = None) -> Config:
    path = None
    if yaml_text is not None:
        assert tmp_path is not None
        path = tmp_path / "config.yaml"
        path.write_text(yaml_text)
    return load_config(path, environ={**BASE_ENV, **(env or {})}, dotenv_path=None)


def test_defaults() -> None:
    cfg = load()
    assert cfg.rate_limit.backend == cfg.idempotency.backend == "memory"
    assert (cfg.rate_limit.max_entries, cfg.idempotency.max_entries) == (10_000, 10_000)
    assert cfg.rate_limit.cleanup_interval == cfg.idempotency.cleanup_interval \
        == timedelta(minutes=5)
    assert cfg.idempotency.ttl == timedelta(hours=24) and cfg.idempotency.enabled
    assert cfg.server.discovery_timeout == timedelta(seconds=5)
    assert cfg.server.request_timeout == timedelta(seconds=60)
    assert (cfg.api_version.current, cfg.api_version.supported) == (1, (1,))
    assert cfg.tenancy.header_enabled and cfg.tenancy.jwt_claim == "tenant_id"


def test_a_redis_url_makes_redis_the_default_backend() -> None:
    cfg = load({"CEDROS_REDIS_URL": "redis://:pw@cache:6379/2"})
    assert cfg.rate_limit.backend == cfg.idempotency.backend == "redis"
    assert cfg.redacted()["redis"]["url"] == "redis://cache:6379/***"
    pinned = load({"CEDROS_REDIS_URL": "redis://cache:6379/0",
                   "CEDROS_RATE_LIMIT_BACKEND": "memory"})
    assert (pinned.rate_limit.backend, pinned.idempotency.backend) == ("memory", "redis")


def test_redis_backend_without_a_url_is_a_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CEDROS_IDEMPOTENCY_BACKEND": "redis"})
    assert ("idempotency.backend is 'redis' but redis.url is not set (CEDROS_REDIS_URL)"
            in info.value.problems)


def test_a_redis_url_must_be_a_redis_url() -> None:
    with pytest.raises(ConfigError) as info:
        load({"CEDROS_REDIS_URL": "http://cache:6379"})
    assert "redis.url: must be a redis://, rediss:// or unix:// URL" in info.value.problems


def test_yaml_sections(tmp_path: Path) -> None:
    cfg = load(yaml_text="""
server:
  discovery_timeout: 2s
  request_timeout: 30s
  trusted_proxies: [10.0.0.0/8]
redis: {url: "redis://127.0.0.1:6379/0", key_prefix: "shop:"}
rate_limit:
  backend: redis
  global_limit: 50
idempotency: {ttl: 1h, wait: 2s, enabled: true}
api_version:
  current: 2
  supported: [1, 2]
  deprecated:
    1: {since: "2026-01-01T00:00:00Z", sunset: "2026-07-01T00:00:00Z",
        link: "https://docs.example/v2"}
tenancy:
  default_tenant: main
  jwt_claim: org
  subdomain_base: .Pay.Example.com
""", tmp_path=tmp_path)
    assert cfg.server.request_timeout == timedelta(seconds=30)
    assert cfg.redis.key_prefix == "shop:" and cfg.rate_limit.global_.limit == 50
    assert cfg.idempotency.ttl == timedelta(hours=1) and cfg.idempotency.backend == "redis"
    dep = cfg.api_version.deprecated[1]
    assert dep.sunset == datetime(2026, 7, 1, tzinfo=UTC) and dep.link.endswith("/v2")
    assert cfg.tenancy.subdomain_base == "pay.example.com"


def test_version_rules() -> None:
    bad = load().model_copy(update={"api_version": APIVersionConfig(
        current=3, supported=(1, 2), deprecated={4: VersionDeprecation()})})
    with pytest.raises(ConfigError) as info:
        validate_config(bad)
    assert "api_version.current: 3 is not in api_version.supported" in info.value.problems
    assert ("api_version.deprecated: version(s) 4 are not in api_version.supported"
            in info.value.problems)


def test_env_trusted_proxies_and_jwt_secret() -> None:
    cfg = load({"CEDROS_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
                "CEDROS_TENANCY_JWT_SECRET": "s3cret-that-is-at-least-32-bytes-long"})
    assert [str(p) for p in cfg.server.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16"]
    assert cfg.tenancy.jwt_secret == "s3cret-that-is-at-least-32-bytes-long"
    assert cfg.redacted()["tenancy"]["jwt_secret"] == "***"
    assert "s3cret" not in repr(cfg)
