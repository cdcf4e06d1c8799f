"""Security headers on every response (spec 10); HSTS only when the request came over HTTPS.

HTTPS is the connection's scheme, or `X-Forwarded-Proto: https` from a trusted proxy (the
real-IP middleware records it): HSTS over plain HTTP would be ignored by browsers at best.
"""

from __future__ import annotations

from starlette.types import Scope

from cedros_pay.rest.middleware._asgi import Headers, state

BASE_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"x-xss-protection", b"1; mode=block"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def is_https(scope: Scope) -> bool:
    return scope.get("scheme") in ("https", "wss") or state(scope).get(
        "forwarded_proto") == "https"


def security_headers(scope: Scope) -> Headers:
    return [*BASE_HEADERS, HSTS] if is_https(scope) else list(BASE_HEADERS)


# Plain header lists are the Exchange's "add, existing names win" edit (never mutated).
_BASE = list(BASE_HEADERS)
_WITH_HSTS = [*BASE_HEADERS, HSTS]


class SecurityHeaders:
    """The check (gate.py): every HTTP response gets the headers."""

    websocket = False

    def __call__(self, scope: Scope) -> Headers:
        return _WITH_HSTS if is_https(scope) else _BASE
