"""The fixed-path REST endpoints, called without Starlette's middleware stack.

Starlette runs every request through its error middleware and its exception middleware,
and each route through another exception wrapper and its request/response adapter:
about 11% of a quote's instructions, for what here is a function call and a try. A
request for one of the route table's fixed paths is dispatched by `FixedRoutes` instead,
with the same observable behaviour:

* the scope gets what Starlette's app and router put there (`app`, `router`, `route`,
  `endpoint`, `path_params`), so `request.app`, the access log's route template and
  everything else read the same values;
* an exception from the endpoint goes to the handler `rest/errors.py` registers for its
  class (the most specific one, as Starlette looks it up); one only the catch-all
  `Exception` handler takes is answered (500) and then re-raised, as Starlette's error
  middleware does, so the layers outside still see it.

Paths with parameters, methods a route does not serve (Starlette answers 405), websockets,
lifespan, GraphQL and requests under a parent's root path all go to Starlette.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class FixedRoutes:
    def __init__(self, app: Starlette, routes: Mapping[str, Route],
                 handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.router = app.router
        # Only plain function endpoints: Starlette adapts those with request_response,
        # which this replaces; anything else is an ASGI app of its own.
        self.routes = {path: route for path, route in routes.items()
                       if route.methods and inspect.isfunction(route.endpoint)}
        self.handlers = {cls: h for cls, h in handlers.items()
                         if isinstance(cls, type) and cls is not Exception}
        self.fallback = handlers.get(Exception)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            found = self.handlers.get(cls)
            if found is not None:
                return found
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None or scope["method"] not in route.methods:  # type: ignore[operator]
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        if "router" not in scope:
            scope["router"] = self.router
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = dict(scope.get("path_params", {}))
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                if self.fallback is None:
                    raise
                await (await self.fallback(request, exc))(scope, receive, send)
                raise  # as Starlette's error middleware: answered, and still raised
            response = await handler(request, exc)
        await response(scope, receive, send)
