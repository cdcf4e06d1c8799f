"""What a handler needs from the request: the services, the tenant and its URL."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services
from cedros_pay.rest.middleware._asgi import header, header_index

# Where the app puts its services in each request's scope: one dict probe for handlers,
# instead of Starlette's app property and its state's attribute hook.
SERVICES_KEY = "cedros.services"


def services(request: Request) -> Services:
    svc: Services | None = request.scope.get(SERVICES_KEY)
    if svc is None:  # an app that did not put them there (a test's bare Starlette app)
        svc = request.app.state.services
    return svc


def tenant(request: Request) -> str:
    """The tenant the tenant middleware chose (default without the middleware)."""
    state: dict[str, Any] = request.scope.get("state") or {}
    return state.get("tenant") or DEFAULT_TENANT


# A Host header Starlette takes as it is: a name or IPv4 address, an optional port.
_PLAIN_HOST = re.compile(rb"[A-Za-z0-9.-]+(?::([0-9]{1,5}))?")


def request_url(request: Request) -> str:
    """`str(request.url)`: the URL the client asked for (a 402's resource URL).

    Starlette builds it with a host-header parser and `urlunsplit` on every request; for
    the usual request (http or https, a plain Host header, a path with nothing to
    escape) the same string is put together here directly. Anything else is left to
    Starlette.
    """
    scope = request.scope
    scheme = scope.get("scheme", "http")
    path: str = scope["path"]
    host = header_index(scope).get(b"host")
    plain = _PLAIN_HOST.fullmatch(host) if host is not None else None
    if (plain is None or (scheme != "http" and scheme != "https")
            or (plain[1] is not None and int(plain[1]) > 65535)
            or not path.startswith("/") or "?" in path or "#" in path or "\\" in path):
        return str(request.url)
    query: bytes = scope.get("query_string", b"")
    url = f"{scheme}://{plain[0].decode('latin-1')}{path}"
    return f"{url}?{query.decode()}" if query else url


def request_header(request: Request, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), from the request's
    header index: cheaper than building `request.headers` for one lookup."""
    return header(request.scope, name)
