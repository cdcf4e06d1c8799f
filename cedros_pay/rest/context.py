"""What a handler needs from the request: the services, the tenant and its URL."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services
from cedros_pay.rest.middleware._asgi import header

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


def request_url(request: Request) -> str:
    """The URL the client asked for (the resource of a 402's PAYMENT-REQUIRED)."""
    return str(request.url)


def request_header(request: Request, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), from the request's
    header index: cheaper than building `request.headers` for one lookup."""
    return header(request.scope, name)
