"""The GraphQL endpoint: schema, limits, error shaping and the ASGI view (DESIGN §6).

`app.py` (the composition root) mounts `create_graphql_app()` at `{prefix}/graphql` for
GET and POST; GET with `Accept: text/html` serves GraphiQL.
"""

from __future__ import annotations

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.config import StrawberryConfig

from cedros_pay.schema.context import Context, get_context
from cedros_pay.schema.errors import CedrosSchema
from cedros_pay.schema.limits import limit_extensions
from cedros_pay.schema.mutations import Mutation
from cedros_pay.schema.queries import Query
from cedros_pay.schema.scalars import SCALAR_MAP


def build_schema() -> strawberry.Schema:
    return CedrosSchema(
        query=Query, mutation=Mutation, extensions=limit_extensions(),
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


class CedrosGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Context:
        return get_context(request)


def create_graphql_app() -> ASGIApp:
    return CedrosGraphQL(build_schema(), graphql_ide="graphiql")
