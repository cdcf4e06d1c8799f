"""What a handler needs from the request: the services and the tenant."""

from __future__ import annotations

from starlette.requests import Request

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def tenant(request: Request) -> str:
    return getattr(request.state, "tenant", None) or DEFAULT_TENANT
