"""Tenant extraction (spec 10, spec 13): X-Tenant-ID, a JWT claim, the subdomain, default.

The tenant goes to `request.state.tenant`, where REST handlers and the GraphQL context
read it for every repository call. A malformed X-Tenant-ID is refused (400) rather than
replaced by the default: the client named a tenant, and silently writing into another
one is worse than an error. A JWT counts only when its HS256 signature verifies with the
configured secret and it has not expired; anything else in Authorization (an admin API
key, say) is left alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import Scope

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import header, state
from cedros_pay.rest.middleware.gate import Refusal

TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IGNORED_SUBDOMAINS = frozenset({"www", "api"})


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_claims(token: str, secret: bytes, now: float) -> dict[str, Any] | None:
    """The claims of an HS256 JWT signed with `secret` and currently valid, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        head = json.loads(_b64url(parts[0]))
        if not isinstance(head, dict) or head.get("alg") != "HS256":
            return None
        expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii"),
                            hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url(parts[2])):
            return None
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and now >= exp:
        return None
    if isinstance(nbf, int | float) and now < nbf:
        return None
    return claims


class Tenant:
    """The check (gate.py): the tenant goes to the request state, or a malformed
    X-Tenant-ID is refused."""

    websocket = True

    def __init__(self, *, default: str = "default", header_enabled: bool = True,
                 jwt_secret: str = "", jwt_claim: str = "tenant_id", subdomain_base: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.default = default
        self.header_enabled = header_enabled
        self.jwt_secret = jwt_secret.encode() if jwt_secret else b""
        self.jwt_claim = jwt_claim
        self.suffix = "." + subdomain_base.lower().strip(".") if subdomain_base else ""
        self.clock = clock

    def from_jwt(self, scope: Scope) -> str | None:
        auth = header(scope, b"authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        claims = verified_claims(token.strip(), self.jwt_secret, self.clock())
        value = claims.get(self.jwt_claim) if claims else None
        return value if isinstance(value, str) and TENANT_ID.fullmatch(value) else None

    def from_host(self, scope: Scope) -> str | None:
        host = (header(scope, b"host") or "").lower()
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not host.endswith(self.suffix):
            return None
        sub = host[: -len(self.suffix)]
        if "." in sub or sub in _IGNORED_SUBDOMAINS or not TENANT_ID.fullmatch(sub):
            return None
        return sub

    def __call__(self, scope: Scope) -> Refusal | None:
        tenant: str | None = None
        if self.header_enabled:
            given = header(scope, b"x-tenant-id")
            if given is not None:
                if not TENANT_ID.fullmatch(given.strip()):
                    return Refusal(CedrosError(
                        ErrorCode.INVALID_FIELD,
                        "X-Tenant-ID must be 1-64 letters, digits, '-' or '_'",
                        {"field": "X-Tenant-ID"}))
                tenant = given.strip()
        if tenant is None and self.jwt_secret:
            tenant = self.from_jwt(scope)
        if tenant is None and self.suffix:
            tenant = self.from_host(scope)
        state(scope)["tenant"] = tenant or self.default
        return None
