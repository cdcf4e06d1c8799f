"""The GraphQL endpoint: schema, limits, error shaping and the ASGI view (DESIGN §6).

`app.py` (the composition root) mounts `graphql_routes()` at `{prefix}/graphql`: GET and
POST over HTTP (GET with `Accept: text/html` serves GraphiQL) and, on the same path, a
WebSocket speaking graphql-transport-ws for `subscription { paymentEvents }`.

A JSON POST of a document that parses and validates (the dashboard's case) is executed
here directly: the prepared document (schema/prepared.py) goes to graphql-core with the
plain-data plans (schema/plans.py), and the answer is shaped, formatted and encoded as
Strawberry's view does it, without the view's per-request machinery (request adapter,
sub-response, extension runner and hooks). The answer of a catalog-only query is kept
with the tenant's catalog snapshot, unless `graphql.result_cache` is off. Everything else
(GET, GraphiQL, other content types, batches, documents with errors, WebSockets) is
Strawberry's view, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
import strawberry
from cross_web import HTTPException
from graphql import ExecutionResult, GraphQLError, OperationType, execute
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from cedros_pay.config.models import GraphQLConfig
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.schema.context import Context, get_context, presents_credentials
from cedros_pay.schema.errors import CedrosSchema, shape_error, spec_extensions
from cedros_pay.schema.limits import CACHE_SIZE, MAX_BODY_BYTES, limit_rules
from cedros_pay.schema.mutations import Mutation
from cedros_pay.schema.plans import PlannedExecutionContext
from cedros_pay.schema.prepared import Documents, PreparedDocument, PreparedDocuments
from cedros_pay.schema.queries import Query
from cedros_pay.schema.scalars import SCALAR_MAP
from cedros_pay.schema.subscriptions import Subscription

# A socket that never sends `connection_init` holds a slot for nothing; Strawberry's
# default waits a minute.
CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
# Each live subscription holds an event queue; a dashboard needs one or two.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 10
JSON_TYPE = "application/json"


def build_schema(documents: Documents) -> strawberry.Schema:
    """The schema, whose view parses and validates through `documents` (the endpoint's
    one document memo, with the limits applied)."""
    return CedrosSchema(
        query=Query, mutation=Mutation, subscription=Subscription,
        extensions=[partial(PreparedDocuments, documents)],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
    )


class _BodyTooLarge(Exception):
    """The request body passed MAX_BODY_BYTES (raised while reading it)."""


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive`, raising _BodyTooLarge once the body's bytes pass `limit`: a body without
    Content-Length (chunked) is stopped while it streams, not after it is buffered."""
    size = 0

    async def capped() -> Any:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _BodyTooLarge
        return message

    return capped


def _content_length(scope: Scope) -> str:
    """The Content-Length header as sent ("" without one), from the raw header list: one
    scan, without building a header mapping."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1"))
    return ""


def _too_large() -> Response:
    error = {"message": f"request body exceeds {MAX_BODY_BYTES} bytes",
             "extensions": spec_extensions(ErrorCode.INVALID_FIELD, {"field": "body"})}
    return Response(orjson.dumps({"errors": [error]}), status_code=413,
                    media_type="application/json")


def _json_response(body: bytes) -> Response:
    # Strawberry's `create_response`, less the sub-response our context never sets.
    return Response(body, status_code=200, media_type="application/json")


def _request_fields(body: bytes) -> tuple[str, dict[str, Any] | None, str | None,
                                          dict[str, Any] | None] | None:
    """query, variables, operationName, extensions of a single-operation JSON body whose
    fields have the types Strawberry accepts; None for anything else (Strawberry's view
    answers it, with its own refusal if need be)."""
    try:
        # orjson parses what it accepts as `json` does; what it refuses (NaN, lone
        # surrogates, huge integers) goes to the view, which parses it with `json`.
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if (type(query) is not str or (variables is not None and type(variables) is not dict)
            or (name is not None and type(name) is not str)
            or (extensions is not None and type(extensions) is not dict)):
        return None
    return query, variables, name, extensions


class CedrosGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: strawberry.Schema, *, documents: Documents, result_cache: bool,
                 **options: Any) -> None:
        super().__init__(schema, **options)
        self._documents = documents
        self._result_cache = result_cache
        self._graphql_schema = schema._schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The answer to an HTTP request: the direct one (module docstring) if it
        applies, else Strawberry's view's (as its own ASGI entry makes it). The request
        keeps the body it read, so the view can still parse it. A body over
        MAX_BODY_BYTES is refused (413) before anything parses it."""
        declared = _content_length(request.scope)
        if declared.isdigit():
            if int(declared) > MAX_BODY_BYTES:
                return _too_large()
            # The server reads no more than Content-Length: nothing to count.
        else:  # chunked, or no body: counted while it streams
            request = Request(request.scope, _capped(request.receive, MAX_BODY_BYTES))
        try:
            response = await self._direct(request) if request.method == "POST" else None
            return response if response is not None else await self.run(request)
        except HTTPException as e:
            return PlainTextResponse(e.reason, status_code=e.status_code)
        except _BodyTooLarge:
            return _too_large()

    async def _direct(self, request: Request) -> Response | None:
        """The answer to a JSON POST of a prepared document, or None for the view.

        The view speaks no HTTP streaming transport (`subscription_protocols` is
        WebSocket-only), so a POST is always one JSON answer; a subscription sent
        over POST is left to the view to refuse."""
        kind = request.headers.get("content-type", "")
        if kind != JSON_TYPE and not kind.startswith(JSON_TYPE + ";"):
            return None
        fields = _request_fields(await request.body())
        if fields is None:
            return None
        query, variables, name, extensions = fields
        try:
            prepared = self._documents.prepare(query, self._graphql_schema)
        except GraphQLError:
            return None
        operation = prepared.operation(name) if not prepared.errors else None
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return None
        context = get_context(request)
        if not (self._result_cache and id(operation) in prepared.catalog_only):
            return _json_response(await self._execute(prepared, context, variables, name,
                                                      extensions))
        try:
            snapshot = await context.services.catalog.snapshot(context.tenant)
        except Exception:  # the resolver meets it too, and reports it as a field error
            return _json_response(await self._execute(prepared, context, variables, name,
                                                      extensions))
        # The tenant is the snapshot's; the document, its operation and variables, and
        # whether admin credentials came with it are the key. The resolver reads the
        # snapshot again: the same one, or (the catalog changed meanwhile) a newer one,
        # whose answer is then kept with a snapshot no request is served from any more.
        key = (query, name, None if variables is None else
               orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
               presents_credentials(request.scope))
        body = snapshot.answer(key)
        if body is None:
            body = await self._execute(prepared, context, variables, name, extensions,
                                       keep=lambda made: snapshot.keep_answer(key, made))
        return _json_response(body)

    async def _execute(self, prepared: PreparedDocument, context: Context,
                       variables: dict[str, Any] | None, name: str | None,
                       extensions: dict[str, Any] | None,
                       keep: Callable[[bytes], object] | None = None) -> bytes:
        """What `CedrosSchema.execute` and the view make of the document: graphql-core
        with Strawberry's execution context (plus plans), spec codes on the errors,
        Strawberry's `process_result` shape and JSON encoding. `keep` gets an answer
        without errors."""
        try:
            outcome: Any = execute(
                self._graphql_schema, prepared.document, root_value=None,
                context_value=context, variable_values=variables, operation_name=name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                executor_class=PlannedExecutionContext,
                operation_extensions=extensions, plans=prepared.plans)
            result: ExecutionResult = (await outcome if optimized_is_awaitable(outcome)
                                       else outcome)
        except Exception as exc:  # as Strawberry: an escaped exception is the only error
            error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc),
                                                                           original_error=exc)
            result = ExecutionResult(None, [error])
        data: dict[str, Any] = {"data": result.data}
        if result.errors:
            data["errors"] = [shape_error(e).formatted for e in result.errors]
        body = self.encode_json(data)
        encoded = body.encode() if isinstance(body, str) else body
        if keep is not None and not result.errors:
            keep(encoded)
        return encoded

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


def create_graphql_app(config: GraphQLConfig | None = None) -> CedrosGraphQL:
    config = config or GraphQLConfig()
    documents = Documents(limit_rules(), CACHE_SIZE)
    # graphql-transport-ws only: the older graphql-ws protocol is deprecated by its
    # own authors, and one protocol is one auth path to keep right.
    return CedrosGraphQL(build_schema(documents), documents=documents,
                         result_cache=config.result_cache,
                         graphql_ide="graphiql",
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         connection_init_wait_timeout=CONNECTION_INIT_TIMEOUT,
                         max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION)


def graphql_routes(path: str, config: GraphQLConfig | None = None) -> list[BaseRoute]:
    """One view behind two routes: Starlette's `Route` only matches HTTP, and a `Mount`
    would redirect `/graphql` to `/graphql/`, which breaks POSTs. The HTTP route's
    endpoint is a plain function, so the fixed-path dispatch (rest/dispatch.py) serves it
    as it serves the REST endpoints, without Starlette's middleware stack and router."""
    view = create_graphql_app(config)

    async def graphql_http(request: Request) -> Response:
        return await view.respond(request)

    return [Route(path, graphql_http, methods=["GET", "POST"]), WebSocketRoute(path, view)]
