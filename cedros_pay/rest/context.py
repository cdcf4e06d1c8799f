"""What a handler needs from the request: the services, the tenant and its URL."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def tenant(request: Request) -> str:
    """The tenant the tenant middleware chose (default without the middleware)."""
    state: dict[str, Any] = request.scope.get("state") or {}
    return state.get("tenant") or DEFAULT_TENANT


# Starlette parses and re-assembles the URL of each request; the same few URLs come back
# all the time (one per paid resource), so the result is kept per input. Bounded: the
# path and query come from clients.
_URLS: dict[tuple[Any, ...], str] = {}
_URLS_LIMIT = 1024


def request_url(request: Request) -> str:
    """`str(request.url)`, remembered for the scope parts it is made of."""
    scope = request.scope
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    key = (scope.get("scheme"), host, scope.get("server"), scope.get("root_path"),
           scope["path"], scope.get("query_string"))
    url = _URLS.get(key)
    if url is None:
        if len(_URLS) >= _URLS_LIMIT:
            _URLS.clear()
        url = _URLS[key] = str(request.url)
    return url


def request_header(request: Request, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), read straight from the
    scope: cheaper than building `request.headers` for one lookup."""
    for key, value in request.scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None
