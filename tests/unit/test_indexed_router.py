"""IndexedRouter answers every request exactly as Starlette's own Router does.

The same route table is served by both routers; each request of the table (fixed paths,
parameters, wrong methods, HEAD, unknown paths, trailing slashes, a shadowing route, a
parent's root path) must get the same status, body and `Allow` header from both.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router

from cedros_pay.rest.routes import IndexedRouter


def handler(name: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        route = request.scope.get("route")
        return JSONResponse({"handler": name, "params": request.path_params,
                             "route": getattr(route, "path", None),
                             "router": type(request.scope.get("router")).__name__ != "NoneType"})
    return endpoint


ROUTES = [
    Route("/health", handler("health"), methods=["GET"]),
    Route("/items/{item_id}", handler("item"), methods=["GET", "POST"]),
    Route("/items/special", handler("special"), methods=["GET"]),  # shadowed by the above
    Route("/quote", handler("quote"), methods=["POST"]),
    Route("/any", handler("any")),  # no method list: Starlette makes it GET/HEAD
]

REQUESTS = [
    ("GET", "/health"), ("HEAD", "/health"), ("POST", "/health"), ("DELETE", "/health"),
    ("POST", "/quote"), ("GET", "/quote"), ("GET", "/items/7"), ("POST", "/items/7"),
    ("GET", "/items/special"), ("GET", "/any"), ("PUT", "/any"), ("GET", "/nope"),
    ("GET", "/health/"), ("POST", "/quote/"), ("GET", "/"),
]


def app_with(router: Router) -> Starlette:
    app = Starlette()
    app.router = router
    return app


async def answers(app: Starlette, method: str, path: str,
                  base: str = "http://test") -> tuple[int, bytes, str | None, str | None]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        resp = await client.request(method, path, follow_redirects=False)
    return resp.status_code, resp.content, resp.headers.get("allow"), resp.headers.get(
        "location")


@pytest.mark.parametrize(("method", "path"), REQUESTS)
async def test_same_answer_as_starlettes_router(method: str, path: str) -> None:
    ours = await answers(app_with(IndexedRouter(ROUTES)), method, path)
    theirs = await answers(app_with(Router(ROUTES)), method, path)
    assert ours == theirs


async def test_fixed_paths_are_indexed_unless_shadowed() -> None:
    router = IndexedRouter(ROUTES)
    assert sorted(router.fixed) == ["/any", "/health", "/quote"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/pay/health"), ("POST", "/pay/quote"),
                                              ("GET", "/pay/items/3"), ("GET", "/pay/nope")])
async def test_mounted_under_a_parent_like_starlettes_router(method: str, path: str) -> None:
    ours = Starlette(routes=[Mount("/pay", app=app_with(IndexedRouter(ROUTES)))])
    theirs = Starlette(routes=[Mount("/pay", app=app_with(Router(ROUTES)))])
    assert await answers(ours, method, path) == await answers(theirs, method, path)
