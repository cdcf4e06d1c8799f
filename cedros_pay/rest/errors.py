"""Every REST failure becomes spec 15's error envelope; nothing else reaches a client."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.responses import spec_json

log = logging.getLogger("cedros_pay.rest")


def render_error(err: CedrosError, status: int | None = None) -> Response:
    return spec_json(err.to_envelope(), status=status or err.http_status)


async def cedros_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CedrosError)
    if exc.http_status >= 500:
        log.error("request failed", extra={"code": exc.code.value, "error": exc.message})
    return render_error(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 etc., in our envelope (spec 15 has no route-level codes)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err = CedrosError(ErrorCode.RESOURCE_NOT_FOUND,
                          f"no endpoint at {request.method} {request.url.path}")
    elif exc.status_code == 405:
        allowed = allowed_methods(request)
        err = CedrosError(ErrorCode.INVALID_FIELD, f"method {request.method} not allowed here",
                          {"allowed": allowed})
        response = render_error(err, status=405)
        response.headers["Allow"] = ", ".join(allowed)  # RFC 9110 §15.5.6
        return response
    else:
        err = CedrosError(ErrorCode.INVALID_FIELD, str(exc.detail))
    return render_error(err, status=exc.status_code)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own Allow names only the
    first route it matched, and one path may have a route per method)."""
    scope = {**request.scope, "method": "GET"}
    methods: set[str] = set()
    router = request.scope.get("router") or getattr(request.app, "router", None)
    for route in getattr(router, "routes", ()):
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


async def unexpected_error(_request: Request, exc: Exception) -> Response:
    """Log the traceback, send the client only the envelope."""
    log.error("unhandled exception", exc_info=exc)
    return render_error(CedrosError(ErrorCode.INTERNAL_ERROR))


EXCEPTION_HANDLERS = {
    CedrosError: cedros_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
