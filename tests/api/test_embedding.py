"""Embedding: the Cedros app mounted inside another Starlette application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from api.conftest import config_from
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from cedros_pay.app import create_app
from cedros_pay.storage.store import memory_store


async def test_mounted_under_a_prefix_with_the_parents_lifespan(rpc_node: str) -> None:
    cedros = create_app(config_from({"CEDROS_X402_RPC_URL": rpc_node}), store=memory_store())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with cedros.lifespan():
            yield

    parent = Starlette(
        routes=[Route("/", lambda _r: PlainTextResponse("shop")), Mount("/pay", app=cedros)],
        lifespan=lifespan,
    )
    async with parent.router.lifespan_context(parent):
        assert cedros.services is not None  # started by the parent's lifespan
        transport = httpx.ASGITransport(app=parent)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            own = await client.get("/")
            health = await client.get("/pay/cedros-health")
    assert own.text == "shop"
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["X-Request-ID"].startswith("req_")
    assert cedros.services is None  # closed with the parent


async def test_mounted_without_lifespan_starts_on_first_request() -> None:
    cedros = create_app(config_from(), store=memory_store())
    parent = Starlette(routes=[Mount("/pay", app=cedros)])
    transport = httpx.ASGITransport(app=parent)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        resp = await client.get("/pay/cedros-health")
    assert resp.status_code == 200
    await cedros.aclose()
