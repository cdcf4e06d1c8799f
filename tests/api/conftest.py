"""Helpers for API tests: configs from env dicts, the app over httpx, a tiny RPC node."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cedros_pay.app import CedrosApp
from cedros_pay.config import Config, load_config

MERCHANT = "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ"
DEVNET_USDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
UNREACHABLE_RPC = "http://127.0.0.1:9/"


def config_from(env: Mapping[str, str] | None = None, yaml_path: str | None = None) -> Config:
    """A valid config from env vars only; pass `CEDROS_X402_RPC_URL` for a live node."""
    base = {
        "CEDROS_X402_NETWORK": "devnet",
        "CEDROS_X402_PAYMENT_ADDRESS": MERCHANT,
        "CEDROS_X402_TOKEN_MINT": DEVNET_USDC,
        "CEDROS_X402_RPC_URL": UNREACHABLE_RPC,
        "CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite",
        "COUPON_SOURCE": "disabled",
    }
    return load_config(yaml_path, environ={**base, **(env or {})}, dotenv_path=None)


@asynccontextmanager
async def client_for(app: CedrosApp) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process, with its lifespan around it."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _rpc_health(request: Request) -> JSONResponse:
    payload = await request.json()
    return JSONResponse({"jsonrpc": "2.0", "id": payload["id"], "result": "ok"})


@pytest.fixture
async def rpc_node() -> AsyncIterator[str]:
    """A loopback JSON-RPC node that answers `getHealth` with "ok"."""
    node = Starlette(routes=[Route("/", _rpc_health, methods=["POST"])])
    async with serve_in_background(node) as url:
        yield url + "/"


@asynccontextmanager
async def serve_in_background(app: Starlette) -> AsyncIterator[str]:
    """Run an ASGI app on a real loopback port for the duration of the block."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no start event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
