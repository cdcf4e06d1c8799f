"""The per-request context every field reads: services, tenant, loaders, admin identity.

Over a WebSocket one context serves the whole connection, so the admin identity is
checked once per connection too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import Scope
from starlette.websockets import WebSocket

from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.admin_auth import AdminIdentity, SignedHeaders
from cedros_pay.resolvers.services import Services
from cedros_pay.schema.loaders import Loaders

CREDENTIAL_KEYS = ("authorization", "x-signer", "x-signature", "x-message")
CREDENTIAL_HEADERS = frozenset(k.encode() for k in CREDENTIAL_KEYS)


@dataclass(slots=True, kw_only=True)
class Context:
    request: Request | WebSocket
    services: Services
    tenant: str
    # The graphql-transport-ws `connection_init` payload; Strawberry sets it on any
    # context that has this attribute.
    connection_params: dict[str, object] | None = None
    _admin: asyncio.Future[AdminIdentity] | None = field(default=None, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    @property
    def loaders(self) -> Loaders:
        """This request's DataLoaders, made when a field first needs one: most
        documents (a listing, a quote) never do."""
        if self._loaders is None:
            self._loaders = Loaders.create(self.services.catalog, self.tenant)
        return self._loaders

    async def admin(self) -> AdminIdentity:
        """The caller as an admin, or the resolver's `unauthorized`/`forbidden` error.

        Checked once per request and shared by every admin field in it: a signed
        `admin:<nonce>` message consumes its nonce, so a second check would refuse it.
        """
        if self._admin is None:
            given = self.credentials()
            self._admin = asyncio.ensure_future(self.services.admin_auth.authenticate(
                self.tenant, given.get("authorization"),
                SignedHeaders(signer=given.get("x-signer"),
                              signature=given.get("x-signature"),
                              message=given.get("x-message")),
            ))
        return await self._admin

    def credentials(self) -> Mapping[str, str]:
        """Where the admin credentials are: a `connection_init` payload that carries
        any (browsers cannot set WebSocket headers), else the request's headers.
        One source or the other, never a mix of both."""
        params = {k.lower(): v for k, v in (self.connection_params or {}).items()
                  if isinstance(v, str)}
        from_params = {k: params[k] for k in CREDENTIAL_KEYS if k in params}
        if from_params:
            return from_params
        headers = self.request.headers
        return {k: headers[k] for k in CREDENTIAL_KEYS if k in headers}


def presents_credentials(scope: Scope) -> bool:
    """Whether an HTTP request carries any admin credential header (what
    `Context.credentials` finds for it), read from the raw headers without building a
    header mapping: a kept answer's key holds it."""
    return any(name in CREDENTIAL_HEADERS for name, _ in scope["headers"])


def get_context(request: Request | WebSocket) -> Context:
    """Services come from the app (built in `app.py`); the tenant from the middleware."""
    services: Services = request.app.state.services
    tenant = getattr(request.state, "tenant", None) or DEFAULT_TENANT
    return Context(request=request, services=services, tenant=tenant)
