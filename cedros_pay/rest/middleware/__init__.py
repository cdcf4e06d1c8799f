"""The HTTP middleware of spec 10, each a plain ASGI class; `build_chain` stacks them in
the spec's order (see `chain.py`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.rest.middleware.access_log import AccessLogMiddleware
from cedros_pay.rest.middleware.api_key import APIKeyMiddleware
from cedros_pay.rest.middleware.api_version import APIVersionMiddleware, Deprecation
from cedros_pay.rest.middleware.chain import (
    ChainDeps,
    ChainOptions,
    TenancyOptions,
    build_chain,
)
from cedros_pay.rest.middleware.cors import CORSMiddleware
from cedros_pay.rest.middleware.idempotency import (
    IdempotencyMiddleware,
    IdempotencyOptions,
    idempotent_routes,
)
from cedros_pay.rest.middleware.rate_limit import RateLimitMiddleware, RateLimitRules, Rule
from cedros_pay.rest.middleware.real_ip import RealIPMiddleware
from cedros_pay.rest.middleware.recovery import RecoveryMiddleware
from cedros_pay.rest.middleware.request_id import RequestIdMiddleware
from cedros_pay.rest.middleware.security_headers import SecurityHeadersMiddleware
from cedros_pay.rest.middleware.tenant import TenantMiddleware
from cedros_pay.rest.middleware.timeout import TimeoutMiddleware, discovery_paths

__all__ = [
    "APIKeyMiddleware",
    "APIVersionMiddleware",
    "AccessLogMiddleware",
    "CORSMiddleware",
    "ChainDeps",
    "ChainOptions",
    "Deprecation",
    "IdempotencyMiddleware",
    "IdempotencyOptions",
    "RateLimitMiddleware",
    "RateLimitRules",
    "RealIPMiddleware",
    "RecoveryMiddleware",
    "RequestContextMiddleware",
    "RequestIdMiddleware",
    "Rule",
    "SecurityHeadersMiddleware",
    "TenancyOptions",
    "TenantMiddleware",
    "TimeoutMiddleware",
    "build_chain",
    "discovery_paths",
    "idempotent_routes",
]


class RequestContextMiddleware:
    """Request id and access log only: the minimal chain, for apps built without config."""

    def __init__(self, app: ASGIApp) -> None:
        self.app: ASGIApp = RequestIdMiddleware(AccessLogMiddleware(app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
