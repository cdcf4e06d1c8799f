"""`require_payment` guarding an embedder's own Starlette route, paid on the sandbox."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from e2e.test_x402_payments import CATALOG, World, _config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from cedros_pay.app import create_app
from cedros_pay.sandbox.testing import running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import memory_store


async def test_guarded_route_needs_payment_then_runs_with_the_grant(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    async with running_devnet_sandbox() as sb:
        cedros = create_app(_config(sb, str(tmp_path / "catalog.yaml")), store=memory_store())

        @cedros.require_payment("article")
        async def premium(request: Request) -> Response:
            grant = request.state.payment
            return JSONResponse({"content": "the article", "paidBy": grant.wallet})

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            async with cedros.lifespan():
                yield

        shop = Starlette(routes=[Route("/premium", premium), Mount("/pay", app=cedros)],
                         lifespan=lifespan)
        async with shop.router.lifespan_context(shop):
            transport = httpx.ASGITransport(app=shop)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                unpaid = await client.get("/premium")
                assert unpaid.status_code == 402
                assert unpaid.json()["accepts"][0]["maxAmountRequired"] == "1500000"
                world = World(sb, client, memory_store())
                tx = usdc_transfer(sb.devnet, 1_500_000, blockhash=await world.blockhash())
                paid = await client.get("/premium", headers={
                    "X-PAYMENT": world.header(tx, "article")})
                replay = await client.get("/premium", headers={
                    "X-PAYMENT": world.header(tx, "article")})
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"content": "the article",
                           "paidBy": str(sb.wallets.payer.pubkey())}
    settled = json.loads(base64.b64decode(paid.headers["X-PAYMENT-RESPONSE"]))
    assert settled["success"] is True and settled["txHash"] == str(tx.signatures[0])
    assert replay.status_code == 402
    assert replay.json()["error"]["code"] == "payment_already_used"
