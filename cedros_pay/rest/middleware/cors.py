"""CORS (spec 10): GET, POST, DELETE, OPTIONS; any request header; Location and the x402
headers exposed (a browser agent must read PAYMENT-REQUIRED / PAYMENT-RESPONSE);
preflights cached 300 s; no credentials.

Only configured origins get CORS headers (`*` allows any); with none configured the layer
does nothing. A preflight is answered here, without reaching the app, and carries the
security headers itself because that layer sits inside this one (spec 10's order).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.rest.middleware._asgi import (
    Headers,
    edit_response,
    header,
    merge_headers,
    merge_vary,
)
from cedros_pay.rest.middleware.security_headers import security_headers

ALLOW_METHODS = b"GET, POST, DELETE, OPTIONS"
EXPOSE_HEADERS = b"Location, PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"
MAX_AGE = b"300"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.any_origin = "*" in allowed_origins
        self.origins = frozenset(o.rstrip("/") for o in allowed_origins if o != "*")

    def allow_origin(self, origin: str) -> bytes | None:
        if self.any_origin:
            return b"*"
        return origin.encode("latin-1") if origin.rstrip("/") in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None or not (self.any_origin or self.origins):
            await self.app(scope, receive, send)
            return
        allowed = self.allow_origin(origin)
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            await self.preflight(scope, send, allowed)
            return

        extra: Headers = [(b"vary", b"Origin")] if not self.any_origin else []
        if allowed is not None:
            extra += [(b"access-control-allow-origin", allowed),
                      (b"access-control-expose-headers", EXPOSE_HEADERS)]

        def add_cors(headers: Headers, present: set[bytes]) -> None:
            _merge_vary(headers, present, extra)

        await self.app(scope, receive, edit_response(scope, send, add_cors))

    async def preflight(self, scope: Scope, send: Send, allowed: bytes | None) -> None:
        headers: Headers = [
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            *security_headers(scope),
        ]
        if allowed is not None:
            requested = header(scope, b"access-control-request-headers")
            headers += [
                (b"access-control-allow-origin", allowed),
                (b"access-control-allow-methods", ALLOW_METHODS),
                # "*" for all headers (spec 10); echoing the list also suits old browsers.
                (b"access-control-allow-headers",
                 requested.encode("latin-1") if requested else b"*"),
                (b"access-control-max-age", MAX_AGE),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _merge_vary(headers: Headers, present: set[bytes], extra: Headers) -> None:
    """Add headers; a Vary already present is extended rather than duplicated."""
    vary = [v for k, v in extra if k == b"vary"]
    merge_headers(headers, [(k, v) for k, v in extra if k != b"vary"], present=present)
    if vary:
        merge_vary(headers, vary[0].decode("latin-1").split(","), present)
