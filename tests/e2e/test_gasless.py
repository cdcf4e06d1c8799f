"""Gasless x402 end to end: server wallets pay the fee, through a real `cedros-pay serve`
(SQLite and PostgreSQL for the shared server; SQLite for the tests that need a server
configured their own way) and the sandbox chain (spec 02 gasless-transaction, spec 07
signer arrangement, spec 22)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api.conftest import serve_in_background
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from support.postgres import PostgresServer
from support.served import BACKENDS, backend_of, sandbox_env, served

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.x402.svm import COMPUTE_BUDGET_PROGRAM_ID, MEMO_PROGRAM_ID

pytestmark = pytest.mark.asyncio(loop_scope="module")

LAMPORTS_PER_SOL = 1_000_000_000
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article:
      description: An article
      crypto_atomic_amount: 1500000
      crypto_token: USDC
    memo-article:
      description: Needs a memo
      crypto_atomic_amount: 1000000
      crypto_token: USDC
      memo_template: "pay:{resource}:{nonce}"
"""


def payment_header(tx: VersionedTransaction, resource: str, *,
                   resource_type: str = "regular", **extra: Any) -> str:
    """An x402 v0 X-PAYMENT header carrying `tx`, as the Cedros clients send it."""
    body = {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
            "payload": {"transaction": base64.b64encode(bytes(tx)).decode(),
                        "signature": str(tx.signatures[0]), "resource": resource,
                        "resourceType": resource_type, **extra}}
    return base64.b64encode(json.dumps(body).encode()).decode()


@dataclass
class World:
    sandbox: RunningSandbox
    client: httpx.AsyncClient

    @property
    def payer(self) -> Keypair:
        return self.sandbox.wallets.payer

    @property
    def server(self) -> Keypair:
        return self.sandbox.wallets.server

    async def build(self, resource: str = "article", **extra: Any) -> httpx.Response:
        # A fresh blockhash: tests sharing one chain never get the same transaction built.
        self.sandbox.chain.produce_blocks(1)
        return await self.client.post("/paywall/v1/gasless-transaction", json={
            "resourceId": resource, "userWallet": str(self.payer.pubkey()), **extra})

    async def pay(self, tx: VersionedTransaction, resource: str = "article",
                  **extra: Any) -> httpx.Response:
        return await self.client.post("/paywall/v1/verify", headers={
            "X-PAYMENT": payment_header(tx, resource, **extra)})

    def merchant_usdc(self, owner: Pubkey | None = None) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(owner or d.wallets.merchant.pubkey(), d.usdc_mint)

    async def healthy_wallets(self, count: int) -> dict[str, Any]:
        """/cedros-health once the first wallet health check has run."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = (await self.client.get("/cedros-health")).json()
            wallets = body.get("walletHealth", {})
            if sum(1 for w in wallets.values() if w["status"] == "healthy") >= count:
                return dict(wallets)
            await asyncio.sleep(0.05)
        raise AssertionError(f"wallet health never showed {count} healthy wallets")


def buyer_signs(tx_b64: str, buyer: Keypair) -> VersionedTransaction:
    """What a wallet adapter does with the built transaction: sign its own slot only."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(tx_b64))
    keys = list(tx.message.account_keys)
    slot = keys.index(buyer.pubkey())
    signatures = list(tx.signatures)
    signatures[slot] = buyer.sign_message(to_bytes_versioned(tx.message))
    return VersionedTransaction.populate(tx.message, signatures)


def env_for(sb: RunningSandbox, *wallets: Keypair, **env: str) -> dict[str, str]:
    out = sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml", COUPON_SOURCE="disabled",
                      CEDROS_X402_GASLESS_ENABLED="true")
    for index, wallet in enumerate(wallets or (sb.wallets.server,), start=1):
        out[f"X402_SERVER_WALLET_{index}"] = str(wallet)
    out.update(env)
    return out


@asynccontextmanager
async def world_for(workdir: Path, *, backend: str = "sqlite",
                    postgres: PostgresServer | None = None,
                    sandbox: dict[str, Any] | None = None, extra_wallets: int = 0,
                    fund: tuple[int, ...] = (), queue: str = "",
                    **env: str) -> AsyncIterator[World]:
    """A server with gasless on; `extra_wallets` more server wallets funded with `fund`;
    `queue`: YAML lines for the x402 section (the tx queue settings are file-only)."""
    async with running_devnet_sandbox(**(sandbox or {})) as sb:
        extra = [Keypair() for _ in range(extra_wallets)]
        for wallet, lamports in zip(extra, fund, strict=False):
            if lamports:
                sb.chain.airdrop(wallet.pubkey(), lamports)
        async with served(CATALOG + (f"x402:\n{queue}" if queue else ""), workdir, backend,
                          env=env_for(sb, sb.wallets.server, *extra, **env),
                          postgres=postgres) as server:
            yield World(sb, server.client)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """One server per backend for the module, its buyer without SOL."""
    backend, postgres = backend_of(request)
    async with world_for(tmp_path_factory.mktemp(f"gasless-{backend}"), backend=backend,
                         postgres=postgres, sandbox={"payer_lamports": 0}) as w:
        yield w


# --- the happy path -------------------------------------------------------------------------


async def test_buyer_without_sol_pays_gaslessly(world: World) -> None:
    assert world.sandbox.chain.balance(world.payer.pubkey()) == 0
    quote = await world.client.post("/paywall/v1/quote", json={"resource": "article"})
    assert quote.status_code == 402, quote.text
    assert quote.json()["accepts"][0]["extra"]["feePayer"] == str(world.server.pubkey())

    built = await world.build()
    assert built.status_code == 200, built.text
    body = built.json()
    server = str(world.server.pubkey())
    assert body["feePayer"] == server
    assert body["signers"] == [server, str(world.payer.pubkey())]
    assert isinstance(body["lastValidBlockHeight"], int) and body["blockhash"]
    tx = VersionedTransaction.from_bytes(base64.b64decode(body["transaction"]))
    keys = tx.message.account_keys
    programs = [keys[ix.program_id_index] for ix in tx.message.instructions]
    assert programs[:2] == [COMPUTE_BUDGET_PROGRAM_ID] * 2
    assert programs[2] == spl.TOKEN_PROGRAM_ID
    assert programs[3:] in ([], [MEMO_PROGRAM_ID])
    assert all(bytes(sig) == bytes(64) for sig in tx.signatures)  # nobody signed yet

    server_sol = world.sandbox.chain.balance(world.server.pubkey())
    merchant = world.merchant_usdc()
    signed = buyer_signs(body["transaction"], world.payer)
    paid = await world.pay(signed, feePayer=server)
    assert paid.status_code == 200, paid.text
    assert paid.json()["wallet"] == str(world.payer.pubkey())
    assert world.merchant_usdc() - merchant == 1_500_000
    assert world.sandbox.chain.balance(world.payer.pubkey()) == 0
    assert world.sandbox.chain.balance(world.server.pubkey()) < server_sol
    # The same signed bytes again co-sign to the same signature: a replay, not a payment.
    again = await world.pay(signed, feePayer=server)
    assert again.status_code != 200
    assert again.json()["error"]["code"] in ("payment_already_used", "signature_reused")
    assert world.merchant_usdc() - merchant == 1_500_000


async def test_requested_fee_payer_must_be_ours(world: World) -> None:
    merchant = world.merchant_usdc()
    stranger = str(Keypair().pubkey())
    resp = await world.build(feePayer=stranger)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_field"
    ours = await world.build(feePayer=str(world.server.pubkey()))
    assert ours.status_code == 200 and ours.json()["feePayer"] == str(world.server.pubkey())
    # A transaction naming a foreign fee payer is not co-signed at /verify either.
    foreign = Keypair().pubkey()
    forged = usdc_transfer(world.sandbox.devnet, 1_500_000, fee_payer=foreign,
                           blockhash=world.sandbox.chain.latest_block.blockhash)
    paid = await world.pay(forged, feePayer=str(foreign))
    assert paid.status_code == 402, paid.text
    assert paid.json()["error"]["code"] == "invalid_signature"
    assert world.merchant_usdc() == merchant


@pytest.mark.parametrize("misuse", ["authority", "sol_payment"])
async def test_fee_payer_that_would_sign_anything_else_is_refused(
        world: World, misuse: str) -> None:
    server, payer = world.server, world.payer
    d = world.sandbox.devnet
    bh = world.sandbox.chain.latest_block.blockhash
    merchant_ata = spl.associated_token_address(d.wallets.merchant.pubkey(), d.usdc_mint)
    if misuse == "authority":
        # Our wallet as the transfer authority: the server would pay out of its own tokens.
        d.chain.mint_to(server.pubkey(), d.usdc_mint, 5_000_000)
        ixs = [spl.transfer_checked(
            spl.associated_token_address(server.pubkey(), d.usdc_mint), d.usdc_mint,
            merchant_ata, server.pubkey(), 1_500_000, 6)]
        signers: list[Keypair | NullSigner] = [NullSigner(server.pubkey())]
    else:
        # A real payment from the buyer plus 1 SOL from our wallet to the buyer.
        ixs = [spl.transfer_checked(
            spl.associated_token_address(payer.pubkey(), d.usdc_mint), d.usdc_mint,
            merchant_ata, payer.pubkey(), 1_500_000, 6),
            transfer(TransferParams(from_pubkey=server.pubkey(), to_pubkey=payer.pubkey(),
                                    lamports=LAMPORTS_PER_SOL))]
        signers = [NullSigner(server.pubkey()), payer]
    tx = VersionedTransaction(MessageV0.try_compile(server.pubkey(), ixs, [], bh), signers)
    server_sol = world.sandbox.chain.balance(server.pubkey())
    merchant = world.merchant_usdc()
    resp = await world.pay(tx, feePayer=str(server.pubkey()))
    assert resp.status_code in (400, 402), resp.text
    error = resp.json()["error"]
    if misuse == "authority":
        # The authority has not signed (its slot is the empty fee payer one), or, co-signed,
        # it is refused as misuse: either way nothing is sent.
        assert error["code"] in ("invalid_signature", "invalid_transaction")
    else:
        assert error["code"] == "invalid_transaction"
        assert error["details"]["reason"] == "fee_payer_misused"
    assert world.sandbox.chain.balance(server.pubkey()) == server_sol
    assert world.merchant_usdc() == merchant


# --- wallet selection -----------------------------------------------------------------------


async def test_round_robin_over_healthy_wallets_skips_an_unhealthy_one(tmp_path: Path) -> None:
    async with world_for(tmp_path, extra_wallets=2,
                         fund=(2 * LAMPORTS_PER_SOL, 1_000_000)) as w:
        health = await w.healthy_wallets(2)
        statuses = sorted(h["status"] for h in health.values())
        assert statuses == ["critical", "healthy", "healthy"]
        assert all("..." in h["address"] for h in health.values())  # truncated
        picked = [(await w.build()).json()["feePayer"] for _ in range(4)]
        funded = {str(w.server.pubkey())}
        assert len(set(picked)) == 2
        assert picked[0] != picked[1] and picked[0] == picked[2] and picked[1] == picked[3]
        assert funded <= set(picked)


# --- recipient token account ----------------------------------------------------------------


@pytest.mark.parametrize(("auto_create", "skip_preflight"), [
    (True, False), (True, True), (False, False)],
    ids=["auto-create", "auto-create-no-preflight", "no-auto-create"])
async def test_missing_recipient_token_account(tmp_path: Path, auto_create: bool,
                                               skip_preflight: bool) -> None:
    merchant = Keypair().pubkey()  # a merchant that has never held USDC
    async with world_for(tmp_path, CEDROS_X402_PAYMENT_ADDRESS=str(merchant),
                         CEDROS_X402_GASLESS_ENABLED="false",
                         CEDROS_X402_SKIP_PREFLIGHT=str(skip_preflight).lower(),
                         CEDROS_X402_AUTO_CREATE_TOKEN_ACCOUNT=str(auto_create).lower()) as w:
        d = w.sandbox.devnet
        ata = spl.associated_token_address(merchant, d.usdc_mint)
        assert w.sandbox.chain.get_account(ata) is None
        tx = usdc_transfer(d, 1_500_000, blockhash=w.sandbox.chain.latest_block.blockhash,
                           recipient_owner=merchant)
        resp = await w.pay(tx)
        if auto_create:
            assert resp.status_code == 200, resp.text
            assert w.merchant_usdc(merchant) == 1_500_000
        else:
            assert resp.status_code == 402, resp.text
            assert resp.json()["error"]["code"] == "missing_token_account"
            assert w.sandbox.chain.get_account(ata) is None


# --- low-balance alerts ---------------------------------------------------------------------


async def test_low_balance_alert_reaches_the_webhook_once(tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], dict[str, Any]]] = []
    alerted = asyncio.Event()

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.json()))
        alerted.set()
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/alert", hook, methods=["POST"])])
    async with serve_in_background(receiver) as url, world_for(
            tmp_path, sandbox={"server_lamports": 2_000_000},
            MONITORING_LOW_BALANCE_ALERT_URL=f"{url}/alert",
            MONITORING_HEADER_X_API_KEY="hook-key", MONITORING_CHECK_INTERVAL="1h") as w:
        await asyncio.wait_for(alerted.wait(), 30)
        await asyncio.sleep(0.5)  # a second alert would have arrived by now
        assert len(received) == 1
        headers, body = received[0]
        assert headers["x-api-key"] == "hook-key"
        assert body["wallet"] == str(w.server.pubkey())
        assert (body["balance"], body["threshold"]) == (0.002, 0.01)
        assert body["timestamp"].endswith("Z")
        health = (await w.client.get("/cedros-health")).json()["walletHealth"]
        assert health == {"wallet1": {"address": f"{str(w.server.pubkey())[:4]}..."
                                             f"{str(w.server.pubkey())[-3:]}",
                                  "balance": 0.002, "status": "low"}}


async def test_cart_is_paid_gaslessly(world: World) -> None:
    cart = await world.client.post("/paywall/v1/cart/quote",
                                    json={"items": [{"resource": "article", "quantity": 2}]})
    assert cart.status_code in (200, 201), cart.text
    cart_id = cart.json()["cartId"]
    merchant = world.merchant_usdc()
    built = await world.build(cart_id)
    assert built.status_code == 200, built.text
    signed = buyer_signs(built.json()["transaction"], world.payer)
    paid = await world.client.post("/paywall/v1/verify", headers={"X-PAYMENT": payment_header(
        signed, cart_id, resource_type="cart", feePayer=built.json()["feePayer"])})
    assert paid.status_code == 200, paid.text
    assert world.merchant_usdc() - merchant == 3_000_000
    again = await world.build(cart_id)
    assert again.json()["error"]["code"] == "cart_already_paid"


async def test_gasless_endpoint_refuses_when_gasless_is_off(tmp_path: Path) -> None:
    async with world_for(tmp_path, CEDROS_X402_GASLESS_ENABLED="false") as w:
        resp = await w.build()
        assert resp.status_code == 404  # a client request for an absent feature, not a 500
        assert resp.json()["error"]["code"] == "resource_not_found"
        assert "not enabled" in resp.json()["error"]["message"]
        quote = await w.client.post("/paywall/v1/quote", json={"resource": "article"})
        assert "feePayer" not in quote.json()["accepts"][0].get("extra", {})


async def test_configured_tx_queue_rides_out_rate_limits(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    async with world_for(tmp_path / "extra", sandbox={"payer_lamports": 0},
                         queue="  tx_queue_min_time_between: 10ms\n"
                               "  tx_queue_max_in_flight: 2\n") as w:
        await w.healthy_wallets(1)
        built = (await w.build()).json()
        signed = buyer_signs(built["transaction"], w.payer)
        w.sandbox.server.faults.fail_next(2, status=429)
        started = time.monotonic()
        paid = await w.pay(signed, feePayer=built["feePayer"])
        assert paid.status_code == 200, paid.text
        # The queue's backoff (0.5 s, then 1 s), not the RPC client's (0.1 s, 0.2 s).
        assert time.monotonic() - started >= 1.45
        assert w.sandbox.server.faults.pending == 0
        assert w.merchant_usdc() == 1_500_000


async def test_auto_create_with_a_broke_server_wallet_is_server_insufficient_funds(
        tmp_path: Path) -> None:
    merchant = Keypair().pubkey()
    async with world_for(tmp_path, sandbox={"server_lamports": 1_000_000},
                         CEDROS_X402_PAYMENT_ADDRESS=str(merchant),
                         CEDROS_X402_GASLESS_ENABLED="false",
                         CEDROS_X402_AUTO_CREATE_TOKEN_ACCOUNT="true") as w:
        tx = usdc_transfer(w.sandbox.devnet, 1_500_000, recipient_owner=merchant,
                           blockhash=w.sandbox.chain.latest_block.blockhash)
        resp = await w.pay(tx)
        assert resp.json()["error"]["code"] == "server_insufficient_funds", resp.text
        assert resp.status_code == 500


async def test_gasless_transaction_carries_the_quote_memo(world: World) -> None:
    built = await world.build("memo-article")
    assert built.status_code == 200, built.text
    tx = VersionedTransaction.from_bytes(base64.b64decode(built.json()["transaction"]))
    memo = bytes(tx.message.instructions[3].data).decode()
    assert memo.startswith("pay:memo-article:")
    paid = await world.pay(buyer_signs(built.json()["transaction"], world.payer),
                           "memo-article", feePayer=built.json()["feePayer"])
    assert paid.status_code == 200, paid.text


async def test_two_gasless_transactions_for_one_cart_settle_once(world: World) -> None:
    """The claim's holder is the buyer's signature while the fee payer's slot is empty, so
    two different gasless transactions never share it."""
    cart = await world.client.post("/paywall/v1/cart/quote",
                                   json={"items": [{"resource": "article", "quantity": 1}]})
    cart_id = cart.json()["cartId"]
    merchant = world.merchant_usdc()
    txs = []
    for _ in range(2):
        built = (await world.build(cart_id)).json()
        txs.append((buyer_signs(built["transaction"], world.payer), built["feePayer"]))
        world.sandbox.chain.produce_blocks(1)  # a new blockhash: a different transaction
    assert txs[0][0].signatures != txs[1][0].signatures
    responses = await asyncio.gather(*(world.client.post("/paywall/v1/verify", headers={
        "X-PAYMENT": payment_header(tx, cart_id, resource_type="cart", feePayer=fee_payer)})
        for tx, fee_payer in txs))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[1] != 200, [r.text for r in responses]
    assert {r.json().get("error", {}).get("code") for r in responses} == {
        None, "cart_already_paid"}
    assert world.merchant_usdc() - merchant == 1_500_000
