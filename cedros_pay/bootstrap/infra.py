"""Cross-cutting runtime built from the configuration: observability hooks and metrics,
the circuit breakers, the shared-state backends of the middleware, and the chain itself.

`build_infra` opens no connection, so the ASGI app can be assembled synchronously;
`connect_infra` does the I/O when the app starts. Embedders reach the pieces through
`CedrosApp.infra`: add their own hooks with `infra.hooks.register(...)`, read
`infra.breakers.snapshot()`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from starlette.types import ASGIApp

from cedros_pay.config import Config
from cedros_pay.config.models import BreakerConfig
from cedros_pay.integrations.circuit_breaker import BreakerSet, BreakerSettings
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.observability import LoggingHook, PrometheusHook, PrometheusMetrics
from cedros_pay.observability.hooks import HookRegistry, HTTPHook
from cedros_pay.observability.sqlalchemy import engine_of, instrument_engine, pool_counts
from cedros_pay.rest.middleware import (
    ChainDeps,
    ChainOptions,
    Deprecation,
    IdempotencyOptions,
    RateLimitRules,
    Rule,
    TenancyOptions,
    build_chain,
    idempotent_routes,
)
from cedros_pay.rest.middleware.state import (
    MemoryIdempotencyStore,
    MemoryRateLimiter,
    RedisIdempotencyStore,
    RedisRateLimiter,
)
from cedros_pay.rest.middleware.state.buckets import RateLimiter
from cedros_pay.rest.middleware.state.responses import IdempotencyStore
from cedros_pay.rest.routes import build_routes
from cedros_pay.storage.store import Store

log = logging.getLogger("cedros_pay.infra")

# A claim on an idempotency key outlives the longest request it can belong to.
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Sweep:
    """A memory backend's periodic cleanup, run as a worker."""

    name: str
    interval: float  # seconds
    run: Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Infra:
    hooks: HookRegistry
    metrics: PrometheusMetrics
    breakers: BreakerSet
    rate_limiter: RateLimiter
    idempotency: IdempotencyStore
    redis: Redis | None = None
    sweeps: tuple[Sweep, ...] = ()


def _breaker(c: BreakerConfig) -> BreakerSettings:
    return BreakerSettings(max_requests=c.max_requests, interval=c.interval.total_seconds(),
                           timeout=c.timeout.total_seconds(),
                           consecutive_failures=c.consecutive_failures,
                           failure_ratio=c.failure_ratio, min_requests=c.min_requests)


def build_infra(config: Config, *, hooks: HookRegistry | None = None) -> Infra:
    """Everything the chain and the services share; opens no connection yet."""
    hooks = hooks or HookRegistry()
    metrics = PrometheusMetrics()
    # HTTP requests reach the metrics through the access-log layer (`http_recorder`).
    hooks.register(PrometheusHook(metrics), exclude=(HTTPHook,))
    hooks.register(LoggingHook())
    cb = config.circuit_breaker
    breakers = BreakerSet.build(
        {"solana_rpc": _breaker(cb.solana_rpc), "stripe_api": _breaker(cb.stripe_api),
         "webhook": _breaker(cb.webhook)}, enabled=cb.enabled, hooks=hooks)
    for name in breakers.names:
        metrics.breaker_state.labels(name).set(0)  # closed; present before any change

    rl, idem = config.rate_limit, config.idempotency
    redis: Redis | None = None
    if "redis" in (rl.backend, idem.backend):
        # Two quick retries mend a pooled connection that a Redis restart broke; more
        # (redis-py's default is 10, backing off to 1 s) would only hold a request that
        # the middleware will answer anyway (fail open, or 503) during an outage.
        redis = Redis.from_url(config.redis.url, socket_timeout=5.0,
                               socket_connect_timeout=2.0, health_check_interval=30,
                               retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2))
    prefix = config.redis.key_prefix
    sweeps: list[Sweep] = []
    limiter: RateLimiter
    if rl.backend == "redis" and redis is not None:
        limiter = RedisRateLimiter(redis, prefix)
    else:
        memory_limiter = MemoryRateLimiter(rl.max_entries)
        sweeps.append(Sweep("rate_limit_sweep", rl.cleanup_interval.total_seconds(),
                            memory_limiter.sweep))
        limiter = memory_limiter
    store: IdempotencyStore
    if idem.backend == "redis" and redis is not None:
        store = RedisIdempotencyStore(redis, prefix)
    else:
        memory_store = MemoryIdempotencyStore(idem.max_entries)
        sweeps.append(Sweep("idempotency_sweep", idem.cleanup_interval.total_seconds(),
                            memory_store.sweep))
        store = memory_store
    return Infra(hooks=hooks, metrics=metrics, breakers=breakers, rate_limiter=limiter,
                 idempotency=store, redis=redis, sweeps=tuple(sweeps))


def _rule(enabled: bool, limit: int, window: float) -> Rule | None:
    return Rule(limit, window) if enabled and limit > 0 else None


def chain_options(config: Config) -> ChainOptions:
    s, rl, t, v = config.server, config.rate_limit, config.tenancy, config.api_version
    idem = config.idempotency
    return ChainOptions(
        route_prefix=s.route_prefix,
        trusted_proxies=tuple(str(p) for p in s.trusted_proxies),
        cors_origins=s.cors_allowed_origins,
        api_current=v.current, api_supported=v.supported,
        api_deprecated={n: Deprecation(d.since, d.sunset, d.link)
                        for n, d in v.deprecated.items()},
        tenancy=TenancyOptions(default=t.default_tenant, header_enabled=t.header_enabled,
                               jwt_secret=t.jwt_secret, jwt_claim=t.jwt_claim,
                               jwt_algorithm=t.jwt_algorithm, jwt_audience=t.jwt_audience,
                               jwt_issuer=t.jwt_issuer, subdomain_base=t.subdomain_base),
        api_keys_enabled=config.api_key.enabled, api_keys=dict(config.api_key.keys),
        rate_limits=RateLimitRules(
            global_=_rule(rl.global_.enabled, rl.global_.limit, rl.global_.window.total_seconds()),
            per_wallet=_rule(rl.per_wallet.enabled, rl.per_wallet.limit,
                             rl.per_wallet.window.total_seconds()),
            per_ip=_rule(rl.per_ip.enabled, rl.per_ip.limit, rl.per_ip.window.total_seconds())),
        discovery_timeout=s.discovery_timeout.total_seconds(),
        request_timeout=s.request_timeout.total_seconds(),
        idempotency=IdempotencyOptions(
            routes=idempotent_routes(build_routes(s.route_prefix)), ttl=idem.ttl.total_seconds(),
            wait=idem.wait.total_seconds(),
            lease=s.request_timeout.total_seconds() + LEASE_MARGIN_SECONDS,
        ) if idem.enabled else None,
        metrics_api_key=s.admin_metrics_api_key,
    )


def wrap(app: ASGIApp, config: Config, infra: Infra) -> ASGIApp:
    """`app` inside spec 10's middleware chain (REST and GraphQL alike)."""
    return build_chain(app, chain_options(config), ChainDeps(
        rate_limiter=infra.rate_limiter, idempotency=infra.idempotency,
        http_hooks=infra.hooks, http_recorder=infra.metrics.http, rate_limit_hooks=infra.hooks,
        exposition=infra.metrics.exposition))


async def connect_infra(infra: Infra, lifecycle: Lifecycle, store: Store) -> None:
    """Reach Redis and instrument the store's engine; each undo goes to `lifecycle`."""
    if infra.redis is not None:
        redis = infra.redis
        lifecycle.push("redis", redis.aclose)
        try:
            await redis.ping()
        except Exception as exc:  # serve anyway: limits fail open, keyed requests get 503
            log.error("redis unreachable at start-up", extra={"error": str(exc)})
    engine = engine_of(store)
    if engine is not None:
        detach = instrument_engine(engine, infra.hooks)
        infra.metrics.watch_pool(*pool_counts(engine))

        async def uninstrument() -> None:
            detach()

        lifecycle.push("db_instrumentation", uninstrument)
