"""Official x402 exact payments (protocol v1 and v2) beside the Cedros v0 format, through
a real `cedros-pay serve` (SQLite and PostgreSQL) and the sandbox chain: 402 headers, the
retry contract, refusals before anything moves, replay protection shared with v0, the
payment.succeeded event in the server's outbox."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api.conftest import config_from
from e2e.test_x402_payments import payment_header
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from support.postgres import PostgresServer
from support.served import BACKENDS, backend_of, sandbox_env, served
from support.webhook_receiver import WebhookReceiver

from cedros_pay.app import create_app
from cedros_pay.sandbox import spl
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import Store, memory_store

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article:
      description: An article
      crypto_atomic_amount: 500000
      crypto_token: USDC
    memo-article:
      description: Needs a memo
      crypto_atomic_amount: 250000
      crypto_token: USDC
      memo_template: "pay:{resource}:{nonce}"
    long-memo:
      description: Memo template longer than the exact scheme's 256 bytes
      crypto_atomic_amount: 100000
      crypto_token: USDC
      memo_template: "LONG {resource}"
coupons:
  coupon_source: yaml
  coupons:
    HALF:
      discount_type: percentage
      discount_value: 50
      applies_at: checkout
""".replace("LONG", "x" * 300)


def b64(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def unb64(value: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(value))
    return doc


@dataclass
class World:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    store: Store

    @property
    def server(self) -> Keypair:
        return self.sandbox.wallets.server

    @property
    def url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    async def offer(self, path: str = "/paywall/article") -> tuple[httpx.Response,
                                                                  dict[str, Any]]:
        resp = await self.client.get(path)
        assert resp.status_code == 402, resp.text
        return resp, unb64(resp.headers["PAYMENT-REQUIRED"])

    def exact_tx(self, accepted: dict[str, Any], *, amount: int | None = None,
                 memo: str | None = None, **kw: Any) -> VersionedTransaction:
        """What the official SDK builds for `accepted`: limit, price, transfer, memo, with
        the advertised fee payer's slot left empty (on a fresh block: tests share a chain)."""
        extra = accepted["extra"]
        kw.setdefault("fee_payer", self.server.pubkey())
        return usdc_transfer(
            self.sandbox.devnet, amount if amount is not None else int(accepted["amount"]),
            blockhash=self.sandbox.chain.produce_blocks(1).blockhash,
            memo=memo if memo is not None else extra["memo"], compute_unit_limit=20_000,
            compute_unit_price=1, **kw)

    @staticmethod
    def v2(tx: VersionedTransaction, accepted: dict[str, Any],
           resource: dict[str, Any]) -> dict[str, str]:
        return {"PAYMENT-SIGNATURE": b64({
            "x402Version": 2, "payload": {"transaction": base64.b64encode(bytes(tx)).decode()},
            "accepted": accepted, "resource": resource})}

    @staticmethod
    def v1(tx: VersionedTransaction, network: str = "solana-devnet") -> dict[str, str]:
        return {"X-PAYMENT": b64({
            "x402Version": 1, "scheme": "exact", "network": network,
            "payload": {"transaction": base64.b64encode(bytes(tx)).decode()}})}

    def merchant_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)

    async def payment_events(self) -> list[dict[str, Any]]:
        """The payment.succeeded events the server queued for the merchant (its outbox,
        written in the payment's own transaction), read from its database."""
        queued = await self.store.webhooks.list("default", limit=10_000)
        return [json.loads(w.payload) for w in queued if w.event_type == "payment.succeeded"]


def _env(sb: RunningSandbox, gasless: bool = True) -> dict[str, str]:
    env = sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml", COUPON_SOURCE="yaml")
    if gasless:
        env.update(CEDROS_X402_GASLESS_ENABLED="true",
                   X402_SERVER_WALLET_1=str(sb.wallets.server))
    return env


@asynccontextmanager
async def served_world(workdir: Path, backend: str, postgres: PostgresServer | None, *,
                       gasless: bool = True, **build: Any) -> AsyncIterator[World]:
    """A real server on `backend` and a fresh sandbox (`build` goes to it), its payment
    events delivered to a receiver on 127.0.0.1."""
    receiver = WebhookReceiver().up()
    hooks = f'callbacks: {{payment_success_url: "{receiver.url}", poll_interval: 200ms}}\n'
    try:
        async with running_devnet_sandbox(**build) as sb, served(
                CATALOG + hooks, workdir, backend, env=_env(sb, gasless),
                postgres=postgres) as server:
            yield World(sb, server.client, server.store)
    finally:
        receiver.down()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    backend, postgres = backend_of(request)
    async with served_world(tmp_path_factory.mktemp(f"v1v2-{backend}"), backend,
                            postgres) as w:
        yield w


async def test_402_keeps_the_v0_body_and_adds_payment_required(world: World) -> None:
    resp, offer = await world.offer()
    body = resp.json()
    assert body["x402Version"] == 0
    assert body["accepts"][0]["scheme"] == "solana-spl-transfer"
    assert body["accepts"][0]["maxAmountRequired"] == "500000"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "PAYMENT-REQUIRED" in resp.headers["Access-Control-Expose-Headers"]
    assert offer["resource"] == {"url": f"{world.url}/paywall/article",
                                 "description": "An article", "mimeType": "application/json"}
    [accepted] = offer["accepts"]
    assert accepted["payTo"] == str(world.sandbox.wallets.merchant.pubkey())  # owner, not ATA
    assert accepted["payTo"] != body["accepts"][0]["payTo"]
    assert accepted["extra"]["feePayer"] == str(world.server.pubkey())
    again = unb64((await world.client.get("/paywall/article")).headers["PAYMENT-REQUIRED"])
    assert again["accepts"][0]["extra"]["memo"] != accepted["extra"]["memo"]  # per quote


async def test_quote_endpoint_402_carries_payment_required(world: World) -> None:
    resp = await world.client.post("/paywall/v1/quote", json={"resource": "article"})
    assert resp.status_code == 402 and resp.json()["x402Version"] == 0
    offer = unb64(resp.headers["PAYMENT-REQUIRED"])
    assert offer["resource"]["url"] == f"{world.url}/paywall/v1/quote"
    assert offer["accepts"][0]["amount"] == "500000"


async def test_v2_payment_settles_once_and_replays_are_refused_on_every_path(
        world: World) -> None:
    _, offer = await world.offer()
    accepted = offer["accepts"][0]
    tx = world.exact_tx(accepted)
    headers = world.v2(tx, accepted, offer["resource"])
    before = world.merchant_usdc()
    paid = await world.client.get("/paywall/article", headers=headers)
    assert paid.status_code == 200, paid.text
    settled = unb64(paid.headers["PAYMENT-RESPONSE"])
    payer = str(world.sandbox.wallets.payer.pubkey())
    assert settled == {"success": True, "transaction": paid.json()["signature"],
                       "network": DEVNET, "payer": payer}
    assert "X-PAYMENT-RESPONSE" not in paid.headers
    assert world.merchant_usdc() - before == 500_000
    [event] = [e for e in await world.payment_events()
               if e.get("proofSignature") == settled["transaction"]]
    assert (event["resourceId"], event["wallet"], event["cryptoAtomicAmount"]) == (
        "article", payer, 500_000)
    events = len(await world.payment_events())

    replay = await world.client.get("/paywall/article", headers=headers)
    assert replay.status_code == 402
    assert replay.json()["error"]["code"] == "payment_already_used"
    refused = unb64(replay.headers["PAYMENT-RESPONSE"])
    assert refused["success"] is False and refused["errorReason"] == "payment_already_used"
    fresh = unb64(replay.headers["PAYMENT-REQUIRED"])  # every 402, a refusal's too
    assert fresh["error"] and fresh["accepts"][0]["amount"] == "500000"
    quote_replay = await world.client.post("/paywall/v1/quote", json={"resource": "article"},
                                           headers=headers)
    assert quote_replay.json()["error"]["code"] == "payment_already_used"
    assert world.merchant_usdc() - before == 500_000
    assert len(await world.payment_events()) == events


async def test_v1_payment_settles_with_x_payment_response(world: World) -> None:
    _, offer = await world.offer("/paywall/memo-article")
    tx = world.exact_tx(offer["accepts"][0])
    paid = await world.client.get("/paywall/memo-article", headers=world.v1(tx))
    assert paid.status_code == 200, paid.text
    settled = unb64(paid.headers["X-PAYMENT-RESPONSE"])
    signature = paid.json()["signature"]
    assert settled == {"success": True, "transaction": signature, "network": "solana-devnet",
                       "payer": str(world.sandbox.wallets.payer.pubkey()),
                       "txHash": signature, "networkId": "devnet", "error": None}
    recorded = await world.store.payments.get("default", signature)
    assert recorded is not None and recorded.metadata["x402_version"] == "1"


async def test_v1_payment_through_the_quote_endpoint(world: World) -> None:
    _, offer = await world.offer()
    tx = world.exact_tx(offer["accepts"][0])
    paid = await world.client.post("/paywall/v1/quote", json={"resource": "article"},
                                   headers=world.v1(tx))
    assert paid.status_code == 200, paid.text
    assert paid.json()["resource"] == "article"


async def test_coupon_in_the_query_prices_the_offer_and_the_settlement(world: World) -> None:
    _, offer = await world.offer("/paywall/article?couponCode=HALF")
    accepted = offer["accepts"][0]
    assert accepted["amount"] == "250000"
    tx = world.exact_tx(accepted)
    headers = world.v2(tx, accepted, offer["resource"])
    without = await world.client.get("/paywall/article", headers=headers)
    assert without.json()["error"]["code"] == "invalid_payment_proof"  # full price now
    paid = await world.client.get("/paywall/article?couponCode=HALF", headers=headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["amount"] == "250000"


async def test_a_memo_template_over_256_bytes_falls_back_to_a_short_memo(
        world: World) -> None:
    _, offer = await world.offer("/paywall/long-memo")
    accepted = offer["accepts"][0]
    memo = accepted["extra"]["memo"]
    assert memo.startswith("cedros:long-memo:") and len(memo) == len("cedros:long-memo:") + 8
    paid = await world.client.get("/paywall/long-memo", headers=world.v1(
        world.exact_tx(accepted)))
    assert paid.status_code == 200, paid.text


async def test_token_2022_mint_is_paid_with_its_own_program(tmp_path: Path) -> None:
    # The server reads the mint's owner from the chain, as the SDK client does.
    async with served_world(tmp_path, "sqlite", None,
                            token_program=spl.TOKEN_2022_PROGRAM_ID) as world:
        _, offer = await world.offer()
        tx = world.exact_tx(offer["accepts"][0])
        paid = await world.client.get("/paywall/article", headers=world.v2(
            tx, offer["accepts"][0], offer["resource"]))
        assert paid.status_code == 200, paid.text


async def test_v0_still_settles_on_the_resource_endpoint(world: World) -> None:
    tx = usdc_transfer(world.sandbox.devnet, 500_000,
                       blockhash=world.sandbox.chain.produce_blocks(1).blockhash)
    paid = await world.client.get("/paywall/article",
                                  headers={"X-PAYMENT": payment_header(tx, "article")})
    assert paid.status_code == 200, paid.text
    assert unb64(paid.headers["X-PAYMENT-RESPONSE"])["txHash"] == str(tx.signatures[0])
    assert "PAYMENT-RESPONSE" not in paid.headers
    short = usdc_transfer(world.sandbox.devnet, 1,
                          blockhash=world.sandbox.chain.latest_block.blockhash)
    refused = await world.client.post("/paywall/v1/verify",
                                      headers={"X-PAYMENT": payment_header(short, "article")})
    assert refused.status_code == 402  # amount_below_minimum: a 402, so it offers again
    assert unb64(refused.headers["PAYMENT-REQUIRED"])["accepts"][0]["amount"] == "500000"


@pytest.mark.parametrize(("change", "code"), [
    ({"amount": "1"}, "invalid_payment_proof"),
    ({"payTo": str(Keypair().pubkey())}, "invalid_payment_proof"),
    ({"network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"}, "invalid_payment_proof"),
])
async def test_v2_accepted_must_match_the_current_offer(world: World, change: dict[str, str],
                                                        code: str) -> None:
    _, offer = await world.offer()
    accepted = offer["accepts"][0]
    tx = world.exact_tx(accepted)
    before = world.merchant_usdc()
    resp = await world.client.get("/paywall/article",
                                  headers=world.v2(tx, {**accepted, **change},
                                                   offer["resource"]))
    assert resp.json()["error"]["code"] == code, resp.text
    assert unb64(resp.headers["PAYMENT-RESPONSE"])["success"] is False
    assert world.merchant_usdc() == before


async def test_refusals_before_anything_moves(world: World) -> None:
    _, offer = await world.offer("/paywall/memo-article")
    accepted = offer["accepts"][0]
    res = offer["resource"]
    before, events = world.merchant_usdc(), len(await world.payment_events())
    cases = {
        "invalid_memo": world.v2(world.exact_tx(accepted, memo="pay:memo-article:zzzzzzzz"),
                                 accepted, res),
        "amount_below_minimum": world.v2(world.exact_tx(accepted, amount=249_999),
                                         accepted, res),
        "invalid_transaction": world.v2(world.exact_tx(
            accepted, fee_payer=world.sandbox.wallets.payer), accepted, res),
    }
    for code, headers in cases.items():
        resp = await world.client.get("/paywall/memo-article", headers=headers)
        assert resp.json()["error"]["code"] == code, (code, resp.text)
    v1_wrong_net = await world.client.get(
        "/paywall/memo-article", headers=world.v1(world.exact_tx(accepted), network="solana"))
    assert v1_wrong_net.json()["error"]["code"] == "invalid_payment_proof"
    assert unb64(v1_wrong_net.headers["X-PAYMENT-RESPONSE"])["success"] is False
    assert world.merchant_usdc() == before
    assert len(await world.payment_events()) == events


async def test_payment_signature_carries_v2_only(world: World) -> None:
    _, offer = await world.offer()
    tx = world.exact_tx(offer["accepts"][0])
    v1_doc = world.v1(tx)["X-PAYMENT"]
    resp = await world.client.get("/paywall/article", headers={"PAYMENT-SIGNATURE": v1_doc})
    assert resp.json()["error"]["code"] == "invalid_payment_proof"
    verify = await world.client.post("/paywall/v1/verify", headers=world.v1(tx))
    assert verify.json()["error"]["code"] == "invalid_resource"


async def test_without_server_wallets_the_exact_offer_is_empty(tmp_path: Path) -> None:
    async with served_world(tmp_path, "sqlite", None, gasless=False) as world:
        resp = await world.client.get("/paywall/article")
    assert resp.status_code == 402 and resp.json()["accepts"]
    offer = unb64(resp.headers["PAYMENT-REQUIRED"])
    assert offer["x402Version"] == 2 and offer["accepts"] == []


async def test_require_payment_guard_takes_v2(tmp_path: Path) -> None:
    """In process on purpose: `require_payment` is the embedding API (create_app mounted
    in the merchant's own Starlette app), which no `serve` process exposes."""
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    async with running_devnet_sandbox() as sb:
        cedros = create_app(config_from(_env(sb), yaml_path=str(tmp_path / "catalog.yaml")),
                            store=memory_store())

        @cedros.require_payment("article")
        async def premium(request: Request) -> Response:
            return JSONResponse({"paidBy": request.state.payment.wallet})

        shop = Starlette(routes=[Route("/premium", premium), Mount("/pay", app=cedros)])
        async with cedros.lifespan():
            transport = httpx.ASGITransport(app=shop)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                unpaid = await client.get("/premium")
                offer = unb64(unpaid.headers["PAYMENT-REQUIRED"])
                world = World(sb, client, memory_store())
                tx = world.exact_tx(offer["accepts"][0])
                paid = await client.get("/premium", headers=world.v2(
                    tx, offer["accepts"][0], offer["resource"]))
    assert unpaid.status_code == 402 and offer["resource"]["url"] == "http://shop/premium"
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"paidBy": str(sb.wallets.payer.pubkey())}
    assert unb64(paid.headers["PAYMENT-RESPONSE"])["network"] == DEVNET
