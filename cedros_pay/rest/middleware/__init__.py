"""The HTTP middleware of spec 10: plain ASGI layers, and the request checks one `Gate`
runs; `build_chain` stacks them in the spec's order (see `chain.py`)."""

from __future__ import annotations

from cedros_pay.rest.middleware.access_log import AccessLogMiddleware
from cedros_pay.rest.middleware.api_key import APIKey
from cedros_pay.rest.middleware.api_version import APIVersion, Deprecation
from cedros_pay.rest.middleware.chain import (
    ChainDeps,
    ChainOptions,
    TenancyOptions,
    build_chain,
)
from cedros_pay.rest.middleware.cors import CORSMiddleware
from cedros_pay.rest.middleware.gate import Check, Gate, Refusal
from cedros_pay.rest.middleware.idempotency import (
    IdempotencyMiddleware,
    IdempotencyOptions,
    idempotent_routes,
)
from cedros_pay.rest.middleware.rate_limit import RateLimit, RateLimitRules, Rule
from cedros_pay.rest.middleware.real_ip import RealIPMiddleware
from cedros_pay.rest.middleware.recovery import RecoveryMiddleware
from cedros_pay.rest.middleware.request_id import RequestIdMiddleware
from cedros_pay.rest.middleware.security_headers import SecurityHeaders
from cedros_pay.rest.middleware.tenant import Tenant
from cedros_pay.rest.middleware.timeout import TimeoutMiddleware, discovery_paths

__all__ = [
    "APIKey",
    "APIVersion",
    "AccessLogMiddleware",
    "CORSMiddleware",
    "ChainDeps",
    "ChainOptions",
    "Check",
    "Deprecation",
    "Gate",
    "IdempotencyMiddleware",
    "IdempotencyOptions",
    "RateLimit",
    "RateLimitRules",
    "RealIPMiddleware",
    "RecoveryMiddleware",
    "Refusal",
    "RequestIdMiddleware",
    "Rule",
    "SecurityHeaders",
    "TenancyOptions",
    "Tenant",
    "TimeoutMiddleware",
    "build_chain",
    "discovery_paths",
    "idempotent_routes",
]
