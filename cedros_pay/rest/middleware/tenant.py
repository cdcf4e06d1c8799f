"""Tenant extraction (spec 10, spec 13): X-Tenant-ID, a JWT claim, the subdomain, default.

The tenant goes to `request.state.tenant`, where REST handlers and the GraphQL context
read it for every repository call. A malformed X-Tenant-ID is refused (400) rather than
replaced by the default: the client named a tenant, and silently writing into another
one is worse than an error.

With `tenancy.jwt_secret` set, a Bearer credential in the JWT form (three dot-separated
segments) is a tenant token, checked by PyJWT: the configured HMAC algorithm only (so
`none` and any RS/ES header are refused; the algorithm never comes from the token),
signature, `exp`/`nbf`/`iat`, and `aud`/`iss` when configured (a token carrying an
`aud` is refused when no audience is configured). A token that fails is refused with
401 `unauthorized` rather than ignored: the client presented a credential, and serving
it as the default tenant would hide the mistake. Anything else in Authorization (an
admin API key, say) is left alone.
"""

from __future__ import annotations

import re
from typing import Any

import jwt
from starlette.types import Scope

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import header, state
from cedros_pay.rest.middleware.gate import Refusal

TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IGNORED_SUBDOMAINS = frozenset({"www", "api"})
# A tenant token carries a few claims; anything longer is not one of ours, and is
# refused before base64 or JSON decoding spends time on it.
MAX_TOKEN_CHARS = 4096
# The algorithms a shared secret can sign with; asymmetric ones would read the secret
# as a public key (the HS/RS confusion), so they are not configurable here.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")

# Why a token was refused, by PyJWT's exception (most specific first): a category for
# the client, never the token's own text.
_REASONS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.DecodeError, "the token is malformed"),
)


def _unauthorized(reason: str) -> Refusal:
    return Refusal(CedrosError(ErrorCode.UNAUTHORIZED, f"tenant token refused: {reason}",
                               {"field": "Authorization"}))


def _reason(exc: jwt.InvalidTokenError) -> str:
    return next((text for kind, text in _REASONS if isinstance(exc, kind)),
                "the token is not valid")


class Tenant:
    """The check (gate.py): the tenant goes to the request state, or a malformed
    X-Tenant-ID or a tenant token that does not verify is refused."""

    websocket = True

    def __init__(self, *, default: str = "default", header_enabled: bool = True,
                 jwt_secret: str = "", jwt_claim: str = "tenant_id",
                 jwt_algorithm: str = "HS256", jwt_audience: str = "", jwt_issuer: str = "",
                 subdomain_base: str = "") -> None:
        if jwt_algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"tenant JWT algorithm must be one of {HMAC_ALGORITHMS}")
        secret, need = jwt_secret.encode(), int(jwt_algorithm[2:]) // 8  # RFC 7518 §3.2
        if secret and len(secret) < need:
            raise ValueError(f"the tenant JWT secret must be at least {need} bytes "
                             f"for {jwt_algorithm}")
        self.default = default
        self.header_enabled = header_enabled
        self.jwt_secret = secret
        self.jwt_claim = jwt_claim
        self.algorithms = [jwt_algorithm]
        self.audience = jwt_audience or None
        self.issuer = jwt_issuer or None
        required = ["aud"] if self.audience else []
        required += ["iss"] if self.issuer else []
        self.decoder = jwt.PyJWT({"require": required, "enforce_minimum_key_length": True})
        self.suffix = "." + subdomain_base.lower().strip(".") if subdomain_base else ""

    def claims(self, token: str) -> dict[str, Any] | Refusal:
        """The verified claims of a tenant token, or the refusal that answers it."""
        if len(token) > MAX_TOKEN_CHARS:
            return _unauthorized("the token is too long")
        try:
            return self.decoder.decode(token, self.jwt_secret, algorithms=self.algorithms,
                                       audience=self.audience, issuer=self.issuer)
        except jwt.InvalidTokenError as exc:
            return _unauthorized(_reason(exc))

    def from_jwt(self, scope: Scope) -> str | Refusal | None:
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return None
        claims = self.claims(token)
        if isinstance(claims, Refusal):
            return claims
        value = claims.get(self.jwt_claim)
        if value is None:
            return None
        if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
            return Refusal(CedrosError(
                ErrorCode.INVALID_FIELD,
                f"the token's {self.jwt_claim!r} claim must be 1-64 letters, digits, '-' or '_'",
                {"field": "Authorization"}))
        return value

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
            found = self.from_jwt(scope)
            if isinstance(found, Refusal):
                return found
            tenant = found
        if tenant is None and self.suffix:
            tenant = self.from_host(scope)
        state(scope)["tenant"] = tenant or self.default
        return None
