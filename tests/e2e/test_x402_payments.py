"""x402 end to end: real transactions through the sandbox chain, paid to a real
`cedros-pay serve` process over HTTP, on SQLite and on PostgreSQL (one server per backend
for the module; every test pays with its own transactions)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api.conftest import config_from
from solders.hash import Hash
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction
from support.served import BACKENDS, backend_of, sandbox_env, served
from support.waiting import eventually

from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")

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
    video:
      description: A video
      crypto_atomic_amount: 2000000
      crypto_token: USDC
coupons:
  coupon_source: yaml
  coupons:
    HALF:
      discount_type: percentage
      discount_value: 50
      applies_at: checkout
"""


def payment_header(tx: VersionedTransaction, resource: str, **kw: Any) -> str:
    """An x402 v0 X-PAYMENT header carrying `tx`, as the Cedros clients send it."""
    return v0_payment_header(tx, resource, **kw)


@dataclass
class World:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    store: Store

    async def blockhash(self) -> Hash:
        # A fresh block per transaction: tests sharing one chain never build the same bytes.
        return self.sandbox.chain.produce_blocks(1).blockhash

    async def transfer(self, amount: int, **kw: Any) -> VersionedTransaction:
        return usdc_transfer(self.sandbox.devnet, amount, blockhash=await self.blockhash(),
                             **kw)

    def header(self, tx: VersionedTransaction, resource: str, **kw: Any) -> str:
        return payment_header(tx, resource, **kw)

    async def pay(self, tx: VersionedTransaction, resource: str, **kw: Any) -> httpx.Response:
        return await self.client.post("/paywall/v1/verify",
                                      headers={"X-PAYMENT": self.header(tx, resource, **kw)})

    def merchant_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)


def _config(sb: RunningSandbox, yaml_path: str, **env: str) -> Any:
    """The in-process app's config for `sb` (other modules embed the app with it)."""
    return config_from({
        "CEDROS_X402_RPC_URL": sb.url, "CEDROS_X402_WS_URL": sb.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint),
        "CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml", **env,
    }, yaml_path=yaml_path)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    backend, postgres = backend_of(request)
    async with running_devnet_sandbox() as sb, served(
            CATALOG, tmp_path_factory.mktemp(f"x402-{backend}"), backend,
            env=sandbox_env(sb), postgres=postgres) as server:
        yield World(sb, server.client, server.store)


def settlement(resp: httpx.Response) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(resp.headers["X-PAYMENT-RESPONSE"]))
    return decoded


def counter(metrics: str, series: str) -> float:
    """The value of one Prometheus series in a /metrics page (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


PAID = 'payments_total{method="x402",resource="article",success="true"}'
REFUSED = 'payments_total{method="x402",resource="",success="false"}'


async def test_user_paid_transfer_grants_access_once(world: World) -> None:
    before = world.merchant_usdc()
    metrics_before = (await world.client.get("/metrics")).text
    tx = await world.transfer(1_500_000)
    resp = await world.pay(tx, "article")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["granted"], body["resource"], body["amount"]) == (True, "article", "1500000")
    assert body["wallet"] == str(world.sandbox.wallets.payer.pubkey())
    assert settlement(resp) == {"success": True, "txHash": str(tx.signatures[0]),
                                "networkId": "devnet", "error": None}
    assert world.merchant_usdc() - before == 1_500_000
    timings = dict(part.split(";dur=") for part in resp.headers["Server-Timing"].split(", "))
    assert set(timings) == {"check", "submit", "confirm"}
    assert all(float(ms) >= 0 for ms in timings.values())
    recorded = await world.store.payments.get("default", str(tx.signatures[0]))
    assert recorded is not None and recorded.resource_id == "article"
    again = await world.pay(tx, "article")
    assert again.status_code == 402
    assert again.json()["error"]["code"] == "payment_already_used"
    assert settlement(again)["success"] is False
    metrics = (await world.client.get("/metrics")).text
    assert counter(metrics, PAID) - counter(metrics_before, PAID) == 1
    assert counter(metrics, REFUSED) - counter(metrics_before, REFUSED) == 1


async def test_one_signature_cannot_pay_for_another_resource(world: World) -> None:
    tx = await world.transfer(2_000_000)
    assert (await world.pay(tx, "article")).status_code == 200
    other = await world.pay(tx, "video")
    assert other.json()["error"]["code"] == "payment_already_used"


async def test_legacy_transaction_and_overpayment_are_accepted(world: World) -> None:
    tx = await world.transfer(1_600_000, legacy=True)
    resp = await world.pay(tx, "article")
    assert resp.status_code == 200, resp.text
    assert resp.json()["amount"] == "1600000"


async def test_underpayment_is_refused_before_anything_moves(world: World) -> None:
    before = world.merchant_usdc()
    resp = await world.pay(await world.transfer(1_499_999), "article")
    assert resp.status_code == 402
    assert resp.json()["error"]["code"] == "amount_below_minimum"
    assert world.merchant_usdc() == before


async def test_quoted_coupon_is_honoured_at_verification(world: World) -> None:
    quote = await world.client.post("/paywall/v1/quote",
                                    json={"resource": "video", "couponCode": "HALF"})
    amount = int(quote.json()["accepts"][0]["maxAmountRequired"])
    assert amount == 1_000_000
    tx = await world.transfer(amount)
    without = await world.pay(tx, "video")
    assert without.json()["error"]["code"] == "amount_below_minimum"
    resp = await world.pay(tx, "video", metadata={"couponCode": "HALF"})
    assert resp.status_code == 200, resp.text


async def test_wrong_recipient_is_refused(world: World) -> None:
    stranger = Keypair()
    chain = world.sandbox.chain
    chain.airdrop(stranger.pubkey(), 1_000_000_000)
    chain.create_token_account(stranger.pubkey(), world.sandbox.devnet.usdc_mint)
    tx = await world.transfer(1_500_000, recipient_owner=stranger.pubkey())
    resp = await world.pay(tx, "article")
    assert resp.json()["error"]["code"] == "invalid_recipient"


async def test_required_memo_must_match_the_template(world: World) -> None:
    quote = (await world.client.post("/paywall/v1/quote",
                                     json={"resource": "memo-article"})).json()
    memo = quote["accepts"][0]["extra"]["memo"]
    missing = await world.pay(await world.transfer(1_000_000), "memo-article")
    assert missing.json()["error"]["code"] in ("missing_memo", "invalid_memo")
    wrong = await world.pay(await world.transfer(1_000_000, memo="pay:article:AAAAAAAA"),
                            "memo-article")
    assert wrong.json()["error"]["code"] == "invalid_memo"
    ok = await world.pay(await world.transfer(1_000_000, memo=memo), "memo-article")
    assert ok.status_code == 200, ok.text


async def test_insufficient_funds_is_reported_with_the_spec_message(world: World) -> None:
    poor = Keypair()
    chain = world.sandbox.chain
    chain.airdrop(poor.pubkey(), 1_000_000_000)
    chain.create_token_account(poor.pubkey(), world.sandbox.devnet.usdc_mint)
    resp = await world.pay(await world.transfer(1_500_000, payer=poor), "article")
    assert resp.status_code == 402
    err = resp.json()["error"]
    assert err["code"] == "insufficient_funds_token"
    from cedros_pay.core.errors import ErrorCode

    assert err["message"] == ErrorCode.INSUFFICIENT_FUNDS_TOKEN.user_message


async def test_malformed_and_foreign_headers_get_their_codes(world: World) -> None:
    c = world.client
    none = await c.post("/paywall/v1/verify")
    assert none.json()["error"]["code"] == "invalid_payment_proof"
    garbage = await c.post("/paywall/v1/verify", headers={"X-PAYMENT": "%%%not-base64"})
    assert garbage.json()["error"]["code"] == "invalid_payment_proof"
    tx = await world.transfer(1_500_000)
    body = json.loads(base64.b64decode(world.header(tx, "article")))
    body["network"] = "mainnet-beta"
    wrong_net = await c.post("/paywall/v1/verify", headers={
        "X-PAYMENT": base64.b64encode(json.dumps(body).encode()).decode()})
    assert wrong_net.json()["error"]["code"] == "invalid_payment_proof"
    body["network"], body["x402Version"] = "devnet", 7
    wrong_version = await c.post("/paywall/v1/verify", headers={
        "X-PAYMENT": base64.b64encode(json.dumps(body).encode()).decode()})
    assert wrong_version.status_code in (400, 402)
    assert wrong_version.json()["error"]["code"] in ("invalid_payment_proof", "invalid_field")


async def test_twenty_concurrent_replays_give_one_success(world: World) -> None:
    tx = await world.transfer(1_500_000)
    header = world.header(tx, "article")
    results = await asyncio.gather(*(
        world.client.post("/paywall/v1/verify", headers={"X-PAYMENT": header})
        for _ in range(20)))
    assert [r.status_code for r in results].count(200) == 1
    refused = [r.json()["error"]["code"] for r in results if r.status_code != 200]
    assert set(refused) == {"payment_already_used"}


async def test_copies_arriving_together_wait_for_the_first_instead_of_sending_again(
        world: World) -> None:
    """While the first copy's sendTransaction is held at the node, nineteen more arrive at
    the same server: they wait for its outcome, so the node is sent the transaction once
    (before, every copy sent it and the ledger refused all but one after confirming)."""
    tx = await world.transfer(1_500_000)
    header = world.header(tx, "article")
    faults = world.sandbox.server.faults
    sends_before = faults.held_total
    faults.hold(30, methods=["sendTransaction"])
    try:
        first = asyncio.ensure_future(
            world.client.post("/paywall/v1/verify", headers={"X-PAYMENT": header}))
        await eventually(lambda: faults.held, "the first send to be held", within=30)
        assert faults.held == 1
        copies = [asyncio.ensure_future(
            world.client.post("/paywall/v1/verify", headers={"X-PAYMENT": header}))
            for _ in range(19)]
        await asyncio.sleep(0.5)  # the copies reach the server and wait behind the first
    finally:
        faults.release()
    results = [await first, *await asyncio.gather(*copies)]
    assert [r.status_code for r in results].count(200) == 1
    assert {r.json()["error"]["code"] for r in results[1:]} == {"payment_already_used"}
    assert faults.held_total - sends_before == 1


async def test_cart_must_be_paid_exactly(world: World) -> None:
    cart = (await world.client.post("/paywall/v1/cart/quote", json={
        "items": [{"resource": "article"}, {"resource": "video", "quantity": 2}]})).json()
    cart_id, total = cart["cartId"], int(cart["quote"]["maxAmountRequired"])
    assert total == 5_500_000
    over = await world.pay(await world.transfer(total + 1), cart_id, resource_type="cart")
    assert over.json()["error"]["code"] == "amount_mismatch"
    under = await world.pay(await world.transfer(total - 1), cart_id, resource_type="cart")
    assert under.json()["error"]["code"] in ("amount_mismatch", "amount_below_minimum")
    tx = await world.transfer(total)
    ok = await world.pay(tx, f"cart:{cart_id}", resource_type="cart")
    assert ok.status_code == 200, ok.text
    assert (ok.json()["resourceType"], ok.json()["resource"]) == ("cart", cart_id)
    stored = await world.store.carts.get("default", cart_id)
    assert stored is not None and stored.wallet_paid_by == ok.json()["wallet"]
    again = await world.pay(await world.transfer(total), cart_id, resource_type="cart")
    assert again.json()["error"]["code"] == "cart_already_paid"


async def test_expired_cart_quote_is_refused(world: World) -> None:
    cart = (await world.client.post("/paywall/v1/cart/quote",
                                    json={"items": [{"resource": "article"}]})).json()
    stored = await world.store.carts.get("default", cart["cartId"])
    assert stored is not None
    stored.expires_at = stored.created_at
    await world.store.carts.save(stored)
    resp = await world.pay(await world.transfer(1_500_000), cart["cartId"],
                           resource_type="cart")
    assert resp.json()["error"]["code"] == "quote_expired"


async def test_resource_endpoint_follows_the_x402_retry_contract(world: World) -> None:
    unpaid = await world.client.get("/paywall/article")
    assert unpaid.status_code == 402
    requirement = unpaid.json()["accepts"][0]
    assert requirement["resource"] == "article"
    # payTo is the merchant's real token account on the chain, not just any derivation.
    assert requirement["payTo"] == str(world.sandbox.devnet.merchant_usdc)
    assert requirement["extra"]["recipientTokenAccount"] == requirement["payTo"]
    tx = await world.transfer(int(requirement["maxAmountRequired"]))
    paid = await world.client.get("/paywall/article",
                                  headers={"X-PAYMENT": world.header(tx, "article")})
    assert paid.status_code == 200, paid.text
    assert paid.json()["resource"] == "article"
    mismatch = await world.client.get("/paywall/video",
                                      headers={"X-PAYMENT": world.header(tx, "article")})
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "invalid_resource"


async def test_settled_payment_can_be_looked_up(world: World) -> None:
    tx = await world.transfer(1_500_000)
    assert (await world.pay(tx, "article")).status_code == 200
    resp = await world.client.get("/paywall/v1/x402-transaction/verify",
                                  params={"signature": str(tx.signatures[0])})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"verified", "resource_id", "wallet", "paid_at", "amount", "metadata"}
    assert (body["verified"], body["resource_id"], body["amount"]) == (True, "article", "1.50")
    missing = await world.client.get("/paywall/v1/x402-transaction/verify",
                                     params={"signature": "nope"})
    assert missing.json()["error"]["code"] == "transaction_not_found"
