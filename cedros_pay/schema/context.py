"""The per-request context every field reads: services, tenant, loaders, admin identity."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.websockets import WebSocket

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.admin_auth import AdminIdentity, SignedHeaders
from cedros_pay.resolvers.services import Services
from cedros_pay.schema.loaders import Loaders


@dataclass(slots=True, kw_only=True)
class Context:
    request: Request | WebSocket
    services: Services
    tenant: str
    loaders: Loaders
    _admin: asyncio.Future[AdminIdentity] | None = field(default=None, repr=False)

    async def admin(self) -> AdminIdentity:
        """The caller as an admin, or the resolver's `unauthorized`/`forbidden` error.

        Checked once per request and shared by every admin field in it: a signed
        `admin:<nonce>` message consumes its nonce, so a second check would refuse it.
        """
        if self._admin is None:
            headers = self.request.headers
            self._admin = asyncio.ensure_future(self.services.admin_auth.authenticate(
                self.tenant, headers.get("authorization"),
                SignedHeaders(signer=headers.get("x-signer"),
                              signature=headers.get("x-signature"),
                              message=headers.get("x-message")),
            ))
        return await self._admin


def get_context(request: Request | WebSocket) -> Context:
    """Services come from the app (built in `app.py`); the tenant from the middleware."""
    services: Services = request.app.state.services
    tenant = getattr(request.state, "tenant", None) or DEFAULT_TENANT
    return Context(request=request, services=services, tenant=tenant,
                   loaders=Loaders.create(services.catalog, tenant))
