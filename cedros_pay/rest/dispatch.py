"""The one routing fast path: fixed-path REST endpoints called without Starlette's stack.

Starlette runs every request through its error and exception middleware, then tries each
route's pattern in turn, then wraps the endpoint in another exception handler and its
request/response adapter. For a request to one of the route table's fixed paths whose
endpoint is a plain function, `FixedRoutes` does the same work directly, with the same
observable behaviour:

* the route is the one Starlette would pick: a path is taken only if no earlier route
  of the table matches it too;
* the scope gets what Starlette's app and router put there (`app`, `router`, `route`,
  `endpoint`, `path_params`), so `request.app`, the access log's route template and
  everything else read the same values;
* an exception from the endpoint goes to the handler `rest/errors.py` registers for its
  class (the most specific one, as Starlette looks it up); one only the catch-all
  `Exception` handler takes is answered (500) and then re-raised, as Starlette's error
  middleware does, so the layers outside still see it.

Everything else goes to the Starlette app: paths with parameters, methods a route does
not serve (Starlette answers 405), websockets, lifespan, GraphQL (a mounted ASGI app,
not a function endpoint) and requests under a parent's root path.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _may_claim(earlier: BaseRoute, path: str) -> bool:
    """Whether Starlette could pick `earlier` for an HTTP request to `path`."""
    if isinstance(earlier, WebSocketRoute):
        return False
    if isinstance(earlier, Route | Mount):
        return earlier.path_regex.match(path) is not None
    return True  # a Host or a custom route: no telling, so the path stays Starlette's


def fixed_routes(routes: Sequence[BaseRoute]) -> dict[str, Route]:
    """Path -> route for the routes without path parameters whose endpoint is a plain
    function (Starlette adapts those with request_response, which `FixedRoutes`
    replaces; anything else is an ASGI app of its own), unless an earlier route of the
    table could claim the same path and so would be tried first."""
    found: dict[str, Route] = {}
    for i, route in enumerate(routes):
        if (not isinstance(route, Route) or route.param_convertors or not route.methods
                or not inspect.isfunction(route.endpoint) or route.path in found):
            continue
        if not any(_may_claim(r, route.path) for r in routes[:i]):
            found[route.path] = route
    return found


class FixedRoutes:
    def __init__(self, app: Starlette, handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.router = app.router
        self.routes = fixed_routes(app.router.routes)
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
