"""The GraphQL endpoint: schema, limits, error shaping and the ASGI view (DESIGN §6).

`app.py` (the composition root) mounts `graphql_routes()` at `{prefix}/graphql`: GET and
POST over HTTP (GET with `Accept: text/html` serves GraphiQL) and, on the same path, a
WebSocket speaking graphql-transport-ws for `subscription { paymentEvents }`.
"""

from __future__ import annotations

from datetime import timedelta

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from cedros_pay.core.errors import CedrosError
from cedros_pay.schema.context import Context, get_context
from cedros_pay.schema.errors import CedrosSchema
from cedros_pay.schema.limits import limit_extensions
from cedros_pay.schema.mutations import Mutation
from cedros_pay.schema.queries import Query
from cedros_pay.schema.scalars import SCALAR_MAP
from cedros_pay.schema.subscriptions import Subscription

# A socket that never sends `connection_init` holds a slot for nothing; Strawberry's
# default waits a minute.
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
# Each live subscription holds an event queue; a dashboard needs one or two.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 10


def build_schema() -> strawberry.Schema:
    return CedrosSchema(
        query=Query, mutation=Mutation, subscription=Subscription,
        extensions=limit_extensions(), config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


class CedrosGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Context:
        return get_context(request)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Credentials, when a connection presents any (in `connection_init` or the
        handshake headers), are checked here, once: wrong ones close the socket with
        4403 at once instead of failing every later operation. A connection without
        credentials is acknowledged, for the public fields; an admin field it
        subscribes to then fails with `unauthorized`, like over HTTP."""
        if context.credentials():
            try:
                await context.admin()
            except CedrosError as exc:
                raise ConnectionRejectionError({"code": exc.code.value}) from exc
        no_payload: UnsetType = UNSET
        return no_payload


def create_graphql_app() -> ASGIApp:
    # graphql-transport-ws only: the older graphql-ws protocol is deprecated by its
    # own authors, and one protocol is one auth path to keep right.
    return CedrosGraphQL(build_schema(), graphql_ide="graphiql",
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
                         max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION)


def graphql_routes(path: str) -> list[BaseRoute]:
    """One view behind two routes: Starlette's `Route` only matches HTTP, and a `Mount`
    would redirect `/graphql` to `/graphql/`, which breaks POSTs."""
    view = create_graphql_app()
    return [Route(path, view, methods=["GET", "POST"]), WebSocketRoute(path, view)]
