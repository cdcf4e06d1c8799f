"""FixedRoutes answers exactly as the Starlette app behind it would, without its stack.

Every request goes to a FixedRoutes in front of a Starlette app and to the same Starlette
app alone; status, body, headers (`Allow` and `Location` included) and what the endpoint
saw in its scope must match, and an unexpected exception must be answered 500 and still
raised. The table has the cases Starlette's router decides in its own way: a fixed path
shadowed by an earlier pattern, a route without a method list, a path claimed by an
earlier mount, two routes for one path, a class endpoint; requests are the listed ones
plus a few hundred drawn at random from the same pieces.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.dispatch import FixedRoutes
from cedros_pay.rest.errors import EXCEPTION_HANDLERS

Answer = tuple[int, bytes, list[tuple[str, str]]]


async def seen(request: Request) -> Response:
    route = request.scope.get("route")
    return JSONResponse({"route": getattr(route, "path", None),
                         "endpoint": request.scope["endpoint"].__name__,
                         "app": type(request.app).__name__, "params": request.path_params,
                         "has_router": "router" in request.scope,
                         "url": str(request.url)})


async def other(request: Request) -> Response:
    return PlainTextResponse(f"other {request.method} {request.url.path}")


async def refused(_request: Request) -> Response:
    raise CedrosError(ErrorCode.INVALID_FIELD, "no", {"field": "x"})


async def http_refusal(_request: Request) -> Response:
    raise HTTPException(status_code=409, detail="busy")


async def broken(_request: Request) -> Response:
    raise RuntimeError("bug")


class Thing(HTTPEndpoint):
    async def get(self, _request: Request) -> Response:
        return PlainTextResponse("thing")


async def inner(_request: Request) -> Response:
    return PlainTextResponse("mounted")


ROUTES = [
    Route("/seen", seen, methods=["GET", "POST"]),
    Route("/refused", refused, methods=["POST"]),
    Route("/http", http_refusal, methods=["GET"]),
    Route("/broken", broken, methods=["GET"]),
    Route("/items/{item_id}", seen, methods=["GET", "POST"]),
    Route("/items/special", other, methods=["GET"]),  # shadowed by the pattern above
    Route("/any", other),  # no method list: Starlette makes it GET and HEAD
    Route("/twice", other, methods=["GET"]),
    Route("/twice", seen, methods=["POST"]),  # the same path again, for another method
    Mount("/sub", routes=[Route("/ok", inner)]),
    Route("/sub/ok", other, methods=["GET"]),  # claimed by the mount first
    Route("/thing", Thing),  # a class: an ASGI app of its own, left to Starlette
]


def build() -> tuple[FixedRoutes, Starlette]:
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    return FixedRoutes(app, EXCEPTION_HANDLERS), app


async def answer(client: httpx.AsyncClient, method: str, path: str) -> Answer:
    resp = await client.request(method, path, follow_redirects=False)
    return resp.status_code, resp.content, sorted(resp.headers.items())


def client_for(app: Any, base: str = "http://test") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base)


async def both(method: str, path: str) -> tuple[Answer, Answer]:
    fixed, starlette = build()
    async with client_for(fixed) as ours, client_for(starlette) as theirs:
        return await answer(ours, method, path), await answer(theirs, method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/seen"), ("POST", "/seen"), ("HEAD", "/seen"), ("DELETE", "/seen"),
    ("GET", "/seen?x=1&y=2"), ("POST", "/refused"), ("GET", "/refused"), ("GET", "/http"),
    ("GET", "/broken"), ("GET", "/items/7"), ("POST", "/items/7"), ("GET", "/items/special"),
    ("GET", "/any"), ("HEAD", "/any"), ("PUT", "/any"), ("GET", "/twice"), ("POST", "/twice"),
    ("PUT", "/twice"), ("GET", "/sub/ok"), ("GET", "/thing"), ("POST", "/thing"),
    ("GET", "/nope"), ("GET", "/seen/"), ("POST", "/refused/"), ("GET", "/"),
])
async def test_same_answer_as_starlette(method: str, path: str) -> None:
    ours, theirs = await both(method, path)
    assert ours == theirs


async def test_same_answers_as_starlette_for_random_requests() -> None:
    rng = random.Random(1717)
    methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
    stems = ["/seen", "/refused", "/http", "/broken", "/items/7", "/items/special",
             "/items/", "/any", "/twice", "/sub/ok", "/sub", "/thing", "/nope", ""]
    fixed, starlette = build()
    async with client_for(fixed) as ours, client_for(starlette) as theirs:
        for _ in range(300):
            path = rng.choice(stems) + rng.choice(["", "", "/", "?q=1", "/x"])
            method = rng.choice(methods)
            assert await answer(ours, method, path or "/") == \
                await answer(theirs, method, path or "/"), (method, path)


async def test_only_plain_function_endpoints_with_unclaimed_fixed_paths_are_taken() -> None:
    fixed, _ = build()
    assert sorted(fixed.routes) == ["/any", "/broken", "/http", "/refused", "/seen", "/twice"]
    assert fixed.routes["/twice"].endpoint is other  # the first of the two


@pytest.mark.parametrize(("method", "path"), [("GET", "/pay/seen"), ("POST", "/pay/seen"),
                                              ("GET", "/pay/items/3"), ("GET", "/pay/nope")])
async def test_mounted_under_a_parent_like_starlette(method: str, path: str) -> None:
    fixed, starlette = build()
    ours = Starlette(routes=[Mount("/pay", app=fixed)])
    theirs = Starlette(routes=[Mount("/pay", app=starlette)])
    async with client_for(ours) as a, client_for(theirs) as b:
        assert await answer(a, method, path) == await answer(b, method, path)


async def test_an_unexpected_exception_is_answered_then_raised() -> None:
    fixed, _ = build()
    transport = httpx.ASGITransport(app=fixed, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="bug"):
            await client.get("/broken")
    async with client_for(fixed) as client:
        status, body, _ = await answer(client, "GET", "/broken")
    assert status == 500 and b"internal_error" in body
