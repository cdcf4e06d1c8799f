"""Helpers for API tests: configs from env dicts, the app over httpx, a tiny RPC node."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

from cedros_pay.app import CedrosApp
from cedros_pay.config import Config, load_config


def config_from(env: Mapping[str, str] | None = None, yaml_path: str | None = None) -> Config:
    base = {"CEDROS_X402_NETWORK": "devnet"}
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


@asynccontextmanager
async def serve_in_background(app: Starlette) -> AsyncIterator[str]:
    """Run an ASGI app on a real loopback port for the duration of the block."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
