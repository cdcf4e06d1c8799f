"""The middleware chain in spec 10's order, outermost first.

     1. recovery          exception -> 500 envelope, traceback logged
     2. request id        X-Request-ID; in every log line
     4. access log        one JSON line + HTTP metrics per request
                          (1, 2 and 4 run as one layer, envelope.py)
     3. real IP           forwarding headers from trusted proxies only (when any)
     5. CORS              configured origins; answers preflights
     6. security headers  on every response; HSTS over HTTPS
     7. API version       X-API-Version, Vary, Deprecation/Sunset
        tenant            X-Tenant-ID / JWT / subdomain / default (spec 10 lists it apart;
                          it runs before anything keyed by tenant)
     8. API key           X-API-Key -> tier (when keys are enabled)
     9. rate limit        token buckets; 429
                          (6-9 only look at the request: they run as one gate, gate.py)
    10. timeout           5 s discovery, 60 s the rest
    11. idempotency       Idempotency-Key replay on the idempotent POSTs
        /metrics          the Prometheus endpoint
                          (requests for other paths skip both: PathSwitch)
    12. the app (REST routes and GraphQL alike)

Being outside the refusing layers (CORS, version, tenant, rate limit, timeout), the
request id, access log and security headers apply to refusals too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.observability.hooks import HTTPHook, HTTPRecorder, RateLimitHook
from cedros_pay.rest.metrics import Exposition, MetricsEndpoint
from cedros_pay.rest.middleware._asgi import route_path
from cedros_pay.rest.middleware.api_key import APIKey
from cedros_pay.rest.middleware.api_version import APIVersion, Deprecation
from cedros_pay.rest.middleware.cors import CORSMiddleware
from cedros_pay.rest.middleware.envelope import RequestEnvelope
from cedros_pay.rest.middleware.gate import Check, Gate
from cedros_pay.rest.middleware.idempotency import IdempotencyMiddleware, IdempotencyOptions
from cedros_pay.rest.middleware.rate_limit import RateLimit, RateLimitRules
from cedros_pay.rest.middleware.real_ip import RealIPMiddleware
from cedros_pay.rest.middleware.security_headers import SecurityHeaders
from cedros_pay.rest.middleware.state.buckets import RateLimiter
from cedros_pay.rest.middleware.state.responses import IdempotencyStore
from cedros_pay.rest.middleware.tenant import Tenant
from cedros_pay.rest.middleware.timeout import TimeoutMiddleware, discovery_paths


@dataclass(frozen=True, slots=True)
class TenancyOptions:
    default: str = "default"
    header_enabled: bool = True
    jwt_secret: str = ""
    jwt_claim: str = "tenant_id"
    jwt_algorithm: str = "HS256"
    jwt_audience: str = ""
    jwt_issuer: str = ""
    subdomain_base: str = ""


@dataclass(frozen=True, slots=True)
class ChainOptions:
    """Everything the chain needs from the configuration, and nothing else."""

    route_prefix: str = ""
    trusted_proxies: Sequence[str] = ()
    cors_origins: Sequence[str] = ()
    api_current: int = 1
    api_supported: Sequence[int] = (1,)
    api_deprecated: Mapping[int, Deprecation] = field(default_factory=dict)
    tenancy: TenancyOptions = field(default_factory=TenancyOptions)
    api_keys_enabled: bool = False
    api_keys: Mapping[str, str] = field(default_factory=dict)
    rate_limits: RateLimitRules = field(default_factory=RateLimitRules)
    discovery_timeout: float = 5.0
    request_timeout: float = 60.0
    idempotency: IdempotencyOptions | None = None  # None: no idempotent replay
    metrics_api_key: str = ""


@dataclass(frozen=True, slots=True)
class ChainDeps:
    """The stateful collaborators: chosen by the composition root (memory or Redis)."""

    rate_limiter: RateLimiter | None = None  # None: no rate limiting
    idempotency: IdempotencyStore | None = None
    http_hooks: HTTPHook | None = None
    http_recorder: HTTPRecorder | None = None  # the HTTP metrics, written by the access log
    rate_limit_hooks: RateLimitHook | None = None
    exposition: Exposition | None = None  # None: no /metrics


def build_chain(app: ASGIApp, options: ChainOptions, deps: ChainDeps) -> ASGIApp:
    """Wrap `app` in the whole chain; built inside out, so read it bottom-up."""
    prefix = options.route_prefix
    layers: list[Callable[[ASGIApp], ASGIApp]] = []
    add = layers.append
    # Recovery, request id and access log: one layer (envelope.py).
    add(lambda a: RequestEnvelope(a, deps.http_hooks, recorder=deps.http_recorder))
    # Layers that would do nothing under this configuration are left out: without trusted
    # proxies the client is the connection's peer, which is what the readers of
    # `client_ip` fall back to; without API keys every request is `free`, the default.
    if options.trusted_proxies:
        add(lambda a: RealIPMiddleware(a, options.trusted_proxies))
    if options.cors_origins:
        add(lambda a: CORSMiddleware(a, options.cors_origins))
    # Security headers to rate limit only look at the request: one gate runs them all.
    t = options.tenancy
    checks: list[Check] = [
        SecurityHeaders(),
        APIVersion(current=options.api_current, supported=options.api_supported,
                   deprecated=options.api_deprecated),
        Tenant(default=t.default, header_enabled=t.header_enabled, jwt_secret=t.jwt_secret,
               jwt_claim=t.jwt_claim, jwt_algorithm=t.jwt_algorithm,
               jwt_audience=t.jwt_audience, jwt_issuer=t.jwt_issuer,
               subdomain_base=t.subdomain_base),
    ]
    if options.api_keys_enabled and options.api_keys:
        checks.append(APIKey(enabled=True, keys=options.api_keys))
    if deps.rate_limiter is not None:
        checks.append(RateLimit(limiter=deps.rate_limiter, rules=options.rate_limits,
                                hooks=deps.rate_limit_hooks))
    add(lambda a: Gate(a, checks))
    add(lambda a: TimeoutMiddleware(a, default=options.request_timeout,
                                    short=options.discovery_timeout,
                                    is_short=discovery_paths(prefix)))
    # Idempotency and /metrics act on a few paths only: other requests skip both layers.
    inner: list[Callable[[ASGIApp], ASGIApp]] = []
    paths: set[str] = set()
    if deps.idempotency is not None and options.idempotency is not None:
        store, idem = deps.idempotency, options.idempotency
        inner.append(lambda a: IdempotencyMiddleware(a, store=store, options=idem))
        paths.update(path for _, path in idem.routes)
    if deps.exposition is not None:
        exposition = deps.exposition
        inner.append(lambda a: MetricsEndpoint(a, path=f"{prefix}/metrics",
                                               exposition=exposition,
                                               api_key=options.metrics_api_key))
        paths.add(f"{prefix}/metrics")
    if inner:
        bare = app
        for layer in reversed(inner):
            app = layer(app)
        app = PathSwitch(app, bare, frozenset(paths))
    for layer in reversed(layers):
        app = layer(app)
    return app


class PathSwitch:
    """HTTP requests for `paths` go to `layered`, the others straight to `bare` (the same
    app without the layers that would only pass them through)."""

    def __init__(self, layered: ASGIApp, bare: ASGIApp, paths: frozenset[str]) -> None:
        self.layered = layered
        self.bare = bare
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) not in self.paths:
            await self.bare(scope, receive, send)
        else:
            await self.layered(scope, receive, send)
