"""FixedRoutes answers exactly as the Starlette app behind it would, without its stack.

Every request of the table goes to a FixedRoutes in front of a Starlette app and to the
same Starlette app alone; status, body, headers and what the endpoint saw in its scope
must match, and an unexpected exception must be answered 500 and still raised.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.dispatch import FixedRoutes
from cedros_pay.rest.errors import EXCEPTION_HANDLERS
from cedros_pay.rest.routes import IndexedRouter


async def seen(request: Request) -> Response:
    route = request.scope.get("route")
    return JSONResponse({"route": getattr(route, "path", None),
                         "endpoint": request.scope["endpoint"].__name__,
                         "app": type(request.app).__name__, "params": request.path_params,
                         "has_router": "router" in request.scope})


async def refused(_request: Request) -> Response:
    raise CedrosError(ErrorCode.INVALID_FIELD, "no", {"field": "x"})


async def http_refusal(_request: Request) -> Response:
    raise HTTPException(status_code=409, detail="busy")


async def broken(_request: Request) -> Response:
    raise RuntimeError("bug")


def build() -> tuple[FixedRoutes, Starlette]:
    app = Starlette(exception_handlers=EXCEPTION_HANDLERS)
    router = app.router = IndexedRouter([
        Route("/seen", seen, methods=["GET", "POST"]),
        Route("/refused", refused, methods=["POST"]),
        Route("/http", http_refusal, methods=["GET"]),
        Route("/broken", broken, methods=["GET"]),
        Route("/items/{item_id}", seen, methods=["GET"]),
    ])
    return FixedRoutes(app, router.fixed, EXCEPTION_HANDLERS), app


async def answer(app: Any, method: str, path: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.request(method, path)
    return resp.status_code, resp.content, sorted(resp.headers.items())


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/seen"), ("POST", "/seen"), ("HEAD", "/seen"), ("DELETE", "/seen"),
    ("POST", "/refused"), ("GET", "/refused"), ("GET", "/http"), ("GET", "/broken"),
    ("GET", "/items/7"), ("GET", "/nope"), ("GET", "/seen/"),
])
async def test_same_answer_as_starlette(method: str, path: str) -> None:
    fixed, starlette = build()
    assert await answer(fixed, method, path) == await answer(starlette, method, path)


async def test_only_plain_function_endpoints_with_fixed_paths_are_taken() -> None:
    fixed, _ = build()
    assert sorted(fixed.routes) == ["/broken", "/http", "/refused", "/seen"]


async def test_an_unexpected_exception_is_answered_then_raised() -> None:
    fixed, _ = build()
    transport = httpx.ASGITransport(app=fixed, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="bug"):
            await client.get("/broken")
    status, body, _ = await answer(fixed, "GET", "/broken")
    assert status == 500 and b"internal_error" in body
