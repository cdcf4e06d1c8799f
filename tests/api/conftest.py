"""Helpers for API tests: configs from env dicts, the app over httpx, a tiny RPC node."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.config import Config, load_config
from cedros_pay.storage.store import memory_store

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


CATALOG_YAML = """
paywall:
  product_source: yaml
  resources:
    p-article:
      description: Premium article
      fiat_amount_cents: 500
      fiat_currency: usd
      crypto_atomic_amount: 5000000
      crypto_token: USDC
      memo_template: "article:{resource}:{nonce}"
      metadata: {name: "Premium Article"}
    p-video:
      description: Video course
      crypto_atomic_amount: 2500000
      crypto_token: USDC
    p-stripe-only:
      description: Card only
      fiat_amount_cents: 1000
      fiat_currency: usd
      stripe_price_id: price_card_only
coupons:
  coupon_source: yaml
  coupons:
    SAVE10:
      discount_type: percentage
      discount_value: 10
      scope: specific
      product_ids: [p-article]
      auto_apply: true
      applies_at: catalog
    CHECKOUT5:
      discount_type: percentage
      discount_value: 5
      auto_apply: true
      applies_at: checkout
    FIXED1:
      discount_type: fixed
      discount_value: 1
      currency: usd
      payment_method: x402
      applies_at: checkout
    OLD:
      discount_type: percentage
      discount_value: 50
      expires_at: "2020-01-01T00:00:00Z"
"""


@pytest.fixture
def catalog_yaml(tmp_path: Path) -> str:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)
    return str(path)


@pytest.fixture
async def catalog_client(catalog_yaml: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the catalog above on the memory store."""
    cfg = config_from({"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml"},
                      yaml_path=catalog_yaml)
    async with client_for(create_app(cfg, store=memory_store())) as client:
        yield client
