"""x402 subscriptions end to end: quote -> real sandbox payment -> activate -> status ->
renew from the period end -> subscriber pass on the resource endpoint -> cancel -> expire.

Most tests pay a real `cedros-pay serve` on SQLite and on PostgreSQL (one per backend for
the module, a tenant per test). The tests that move time (renewal from the period end,
grace and expiry) keep an in-process app with a manual clock: no server process has one."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api.conftest import client_for, config_from
from solders.keypair import Keypair
from support.served import BACKENDS, backend_of, sandbox_env, served

from cedros_pay.app import create_app
from cedros_pay.core.clock import ManualClock, parse_rfc3339
from cedros_pay.core.periods import BillingPeriod, period_end
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.resolvers.subscription_events import SubscriptionEvent
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import Store, memory_store

pytestmark = pytest.mark.asyncio(loop_scope="module")

CATALOG = """
subscriptions:
  enabled: true
  grace_period_hours: 24
paywall:
  product_source: yaml
  resources:
    monthly:
      description: Monthly plan
      crypto_atomic_amount: 2000000
      crypto_token: USDC
      subscription: {billing_period: month, billing_interval: 1, allow_x402: true}
    stripe-only:
      description: Card plan
      fiat_amount_cents: 900
      crypto_atomic_amount: 1000000
      crypto_token: USDC
      subscription: {billing_period: month, stripe_price_id: price_card}
    single:
      description: Not a plan
      crypto_atomic_amount: 1000000
      crypto_token: USDC
coupons:
  coupon_source: yaml
  coupons:
    HALF: {discount_type: percentage, discount_value: 50, applies_at: checkout}
"""


@dataclass
class Recorder:
    payments: list[PaymentEvent] = field(default_factory=list)
    subs: list[SubscriptionEvent] = field(default_factory=list)

    async def payment_succeeded(self, event: PaymentEvent) -> None:
        self.payments.append(event)

    async def subscription_changed(self, event: SubscriptionEvent) -> None:
        self.subs.append(event)


@dataclass
class Buyer:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    store: Store
    tenant: str = "default"

    @property
    def wallet(self) -> str:
        return str(self.sandbox.wallets.payer.pubkey())

    async def pay(self, amount: int, resource: str = "monthly") -> str:
        # A fresh block each time: tests sharing one chain never build the same bytes.
        tx = usdc_transfer(self.sandbox.devnet, amount,
                           blockhash=self.sandbox.chain.produce_blocks(1).blockhash)
        resp = await self.client.post("/paywall/v1/verify",
                                      headers={"X-PAYMENT": v0_payment_header(tx, resource)})
        assert resp.status_code == 200, resp.text
        return str(tx.signatures[0])

    async def activate(self, signature: str | None, **kw: Any) -> httpx.Response:
        body: dict[str, Any] = {"productId": "monthly", "wallet": self.wallet, **kw}
        if signature is not None:
            body["paymentSignature"] = signature
        return await self.client.post("/paywall/v1/subscription/x402/activate", json=body)

    async def cancel_at_period_end_then_reactivate(self, sub_id: str, stamp: int) -> None:
        """Each call signed by the subscriber, naming the action and the id (at `stamp`)."""
        payer = self.sandbox.wallets.payer
        cancel = await self.client.post(
            "/paywall/v1/subscription/cancel", json={"subscriptionId": sub_id, "atPeriodEnd": True},
            headers=signed(payer, f"cancel-subscription:{sub_id}:{stamp}"))
        assert cancel.status_code == 200 and cancel.json()["atPeriodEnd"] is True
        assert (await self.status()).json()["cancelAtPeriodEnd"] is True
        react = await self.client.post(
            "/paywall/v1/subscription/reactivate", json={"subscriptionId": sub_id},
            headers=signed(payer, f"reactivate-subscription:{sub_id}:{stamp}"))
        assert react.json()["cancelAtPeriodEnd"] is False

    async def status(self, user: str | None = None) -> httpx.Response:
        return await self.client.get("/paywall/v1/subscription/status",
                                     params={"userId": user or self.wallet,
                                             "resource": "monthly"})


@dataclass
class World(Buyer):
    """A buyer of an in-process app whose clock the test moves."""

    clock: ManualClock = field(default_factory=lambda: ManualClock(datetime.now(UTC)))
    notes: Recorder = field(default_factory=Recorder)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Buyer]:
    backend, postgres = backend_of(request)
    async with running_devnet_sandbox() as sb, served(
            CATALOG, tmp_path_factory.mktemp(f"subs-{backend}"), backend, postgres=postgres,
            env=sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml",
                            COUPON_SOURCE="yaml")) as running:
        yield Buyer(sb, running.client, running.store)


@pytest.fixture
def buyer(server: Buyer) -> Buyer:
    """The module's server seen as a tenant of this test's own."""
    tenant = f"t{uuid.uuid4().hex[:12]}"
    server.client.headers["X-Tenant-ID"] = tenant
    return replace(server, tenant=tenant)


@pytest_asyncio.fixture(loop_scope="module")
async def world(tmp_path: Path) -> AsyncIterator[World]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    async with running_devnet_sandbox() as sb:
        store = memory_store()
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        notes = Recorder()
        config = config_from({
            "CEDROS_X402_RPC_URL": sb.url, "CEDROS_X402_WS_URL": sb.ws_url,
            "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
            "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint),
            "CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml",
        }, yaml_path=str(tmp_path / "catalog.yaml"))
        app = create_app(config, store=store, clock=clock, notifier=notes)
        async with client_for(app) as client:
            yield World(sb, client, store, clock=clock, notes=notes)


def signed(keypair: Keypair, message: str) -> dict[str, str]:
    sig = base64.b64encode(bytes(keypair.sign_message(message.encode()))).decode()
    return {"X-Signer": str(keypair.pubkey()), "X-Signature": sig, "X-Message": message}


async def test_quote_is_the_products_x402_quote_with_the_period(world: World) -> None:
    resp = await world.client.post("/paywall/v1/subscription/quote",
                                   json={"resource": "monthly", "interval": "monthly",
                                         "couponCode": "HALF"})
    assert resp.status_code == 402, resp.text
    body = resp.json()
    accepts = body["requirement"]["accepts"]
    assert body["requirement"]["x402Version"] == 0 and len(accepts) == 1
    assert accepts[0]["maxAmountRequired"] == "1000000"  # HALF applied
    assert accepts[0]["resource"] == "monthly" and accepts[0]["extra"]["memo"]
    sub = body["subscription"]
    start = parse_rfc3339(sub["periodStart"])
    assert start == world.clock.now()
    assert parse_rfc3339(sub["periodEnd"]) == period_end(start, BillingPeriod.MONTH, 1)
    assert sub["durationSeconds"] == int((parse_rfc3339(sub["periodEnd"]) - start)
                                         .total_seconds())
    assert sub["interval"] == "monthly" and "intervalDays" not in sub


async def test_the_whole_x402_lifecycle(world: World) -> None:
    unpaid = await world.activate(None)
    assert unpaid.status_code == 200
    assert unpaid.json()["status"] == "inactive"
    assert unpaid.json()["quote"]["accepts"][0]["maxAmountRequired"] == "2000000"
    assert (await world.status()).status_code == 404

    first = await world.pay(2_000_000)
    resp = await world.activate(first, metadata={"plan": "gold"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    now = world.clock.now()
    assert body["status"] == "active" and "quote" not in body
    assert (body["productId"], body["wallet"]) == ("monthly", world.wallet)
    assert (body["billingPeriod"], body["billingInterval"]) == ("month", 1)
    assert parse_rfc3339(body["currentPeriodStart"]) == now
    end1 = period_end(now, BillingPeriod.MONTH, 1)
    assert parse_rfc3339(body["currentPeriodEnd"]) == end1
    sub_id = body["subscriptionId"]

    again = await world.activate(first)  # one signature buys one period
    assert again.json()["subscriptionId"] == sub_id and "quote" in again.json()
    assert parse_rfc3339(again.json()["currentPeriodEnd"]) == end1

    status = (await world.status()).json()
    assert status == {"active": True, "status": "active", "expiresAt": body["currentPeriodEnd"],
                      "currentPeriodEnd": body["currentPeriodEnd"], "interval": "monthly",
                      "cancelAtPeriodEnd": False}

    world.clock.advance(timedelta(days=10))
    second = await world.pay(2_000_000)
    renewed = (await world.activate(second)).json()
    assert renewed["subscriptionId"] == sub_id
    assert parse_rfc3339(renewed["currentPeriodStart"]) == end1  # from the period end
    assert parse_rfc3339(renewed["currentPeriodEnd"]) == period_end(end1, BillingPeriod.MONTH, 1)
    assert [e.event_type for e in world.notes.subs] == ["subscription.created",
                                                         "subscription.renewed"]
    assert world.notes.subs[0].user_id == world.wallet and world.notes.subs[0].rail == "x402"

    # The resource endpoint is free for the subscriber who proves the wallet.
    payer = world.sandbox.wallets.payer
    stamp = int(world.clock.now().timestamp())
    free = await world.client.get("/paywall/monthly",
                                  headers=signed(payer, f"subscription:monthly:{stamp}"))
    assert free.status_code == 200, free.text
    assert free.json()["granted"] is True and free.json()["subscriptionId"] == sub_id
    stranger = Keypair()
    forged = signed(stranger, f"subscription:monthly:{stamp}")
    forged["X-Signer"] = world.wallet  # a subscriber's address with someone else's key
    assert (await world.client.get("/paywall/monthly", headers=forged)).status_code == 402
    stale = signed(payer, f"subscription:monthly:{stamp - 3600}")
    assert (await world.client.get("/paywall/monthly", headers=stale)).status_code == 402

    await world.cancel_at_period_end_then_reactivate(sub_id, int(world.clock.now().timestamp()))

    # Past the end plus the 24 h grace the worker's sweep expires it.
    subs = world_subs(world)
    world.clock.set(parse_rfc3339(renewed["currentPeriodEnd"]) + timedelta(hours=23))
    assert (await world.status()).json()["active"] is True  # grace
    assert await subs.expire_overdue() == 0
    world.clock.advance(timedelta(hours=2))
    assert (await world.status()).json()["active"] is False
    assert await subs.expire_overdue() == 1
    assert (await world.status()).json()["status"] == "expired"
    assert world.notes.subs[-1].event_type == "subscription.expired"

    # A lapsed subscription restarts from now.
    third = await world.pay(2_000_000)
    back = (await world.activate(third)).json()
    assert back["status"] == "active"
    assert parse_rfc3339(back["currentPeriodStart"]) == world.clock.now()

    stamp = int(world.clock.now().timestamp())
    cancelled = await world.client.post(
        "/paywall/v1/subscription/cancel", json={"subscriptionId": sub_id, "atPeriodEnd": False},
        headers=signed(payer, f"cancel-subscription-now:{sub_id}:{stamp}"))
    assert cancelled.status_code == 200
    assert (await world.status()).json()["active"] is False
    assert world.notes.subs[-1].event_type == "subscription.cancelled"


async def test_activation_renewal_pass_and_cancellation_on_a_real_server(
        buyer: Buyer) -> None:
    """The lifecycle without moving time, in a real server and its database."""
    unpaid = await buyer.activate(None)
    assert unpaid.status_code == 200 and unpaid.json()["status"] == "inactive"
    assert (await buyer.status()).status_code == 404

    before = datetime.now(UTC)
    first = await buyer.pay(2_000_000)
    resp = await buyer.activate(first, metadata={"plan": "gold"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "active" and "quote" not in body
    start, end1 = parse_rfc3339(body["currentPeriodStart"]), parse_rfc3339(
        body["currentPeriodEnd"])
    slack = timedelta(minutes=1)  # the server's clock is the wall clock
    assert before - slack <= start <= datetime.now(UTC) + slack
    assert abs(end1 - period_end(start, BillingPeriod.MONTH, 1)) < timedelta(seconds=1)
    sub_id = body["subscriptionId"]
    again = await buyer.activate(first)  # one signature buys one period
    assert again.json()["subscriptionId"] == sub_id and "quote" in again.json()

    renewed = (await buyer.activate(await buyer.pay(2_000_000))).json()
    assert renewed["subscriptionId"] == sub_id
    assert parse_rfc3339(renewed["currentPeriodStart"]) == end1  # from the period end
    status = (await buyer.status()).json()
    assert (status["active"], status["currentPeriodEnd"]) == (True,
                                                              renewed["currentPeriodEnd"])

    payer = buyer.sandbox.wallets.payer
    stamp = int(datetime.now(UTC).timestamp())
    free = await buyer.client.get("/paywall/monthly",
                                  headers=signed(payer, f"subscription:monthly:{stamp}"))
    assert free.status_code == 200, free.text
    assert free.json()["subscriptionId"] == sub_id
    forged = signed(Keypair(), f"subscription:monthly:{stamp}")
    forged["X-Signer"] = buyer.wallet
    assert (await buyer.client.get("/paywall/monthly", headers=forged)).status_code == 402

    stamp = int(datetime.now(UTC).timestamp())
    await buyer.cancel_at_period_end_then_reactivate(sub_id, stamp)
    stranger = await buyer.client.post(
        "/paywall/v1/subscription/cancel", json={"subscriptionId": sub_id, "atPeriodEnd": False},
        headers=signed(Keypair(), f"cancel-subscription-now:{sub_id}:{stamp}"))
    assert stranger.status_code == 403
    now = await buyer.client.post(
        "/paywall/v1/subscription/cancel", json={"subscriptionId": sub_id, "atPeriodEnd": False},
        headers=signed(payer, f"cancel-subscription-now:{sub_id}:{stamp}"))
    assert now.status_code == 200
    assert (await buyer.status()).json()["active"] is False


def world_subs(world: World) -> Any:
    return world.client._transport.app.services.subscriptions  # type: ignore[attr-defined]


async def test_a_payment_for_another_product_or_wallet_does_not_activate(buyer: Buyer) -> None:
    other = await buyer.pay(1_000_000, "single")
    assert "quote" in (await buyer.activate(other)).json()
    paid = await buyer.pay(2_000_000)
    stranger = str(Keypair().pubkey())
    resp = await buyer.client.post("/paywall/v1/subscription/x402/activate", json={
        "productId": "monthly", "wallet": stranger, "paymentSignature": paid})
    assert "quote" in resp.json() and resp.json()["subscriptionId"] == ""


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("quote", {"interval": "monthly"}, 400, "missing_field"),
    ("quote", {"resource": "monthly"}, 400, "missing_field"),
    ("quote", {"resource": "monthly", "interval": "yearly"}, 400, "invalid_field"),
    ("quote", {"resource": "monthly", "interval": "custom"}, 400, "invalid_field"),
    ("quote", {"resource": "monthly", "interval": 5}, 400, "invalid_field"),
    ("quote", {"resource": "nope", "interval": "monthly"}, 404, "resource_not_found"),
    ("quote", {"resource": "single", "interval": "monthly"}, 400, "invalid_resource"),
    ("quote", {"resource": "stripe-only", "interval": "monthly"}, 400, "invalid_resource"),
    ("quote", {"resource": "monthly", "interval": "custom", "intervalDays": "x"}, 400,
     "invalid_field"),
    ("x402/activate", {"productId": "monthly"}, 400, "missing_field"),
    ("x402/activate", {"productId": "monthly", "wallet": "not-a-wallet"}, 400,
     "invalid_wallet"),
    ("x402/activate", {"wallet": "11111111111111111111111111111111"}, 400, "missing_field"),
    ("x402/activate", {"productId": "monthly", "wallet": "11111111111111111111111111111111",
                       "metadata": {"a": {"b": 1}}}, 400, "invalid_field"),
    ("cancel", {}, 400, "missing_field"),
    ("cancel", {"subscriptionId": "sub_nope"}, 404, "not_found"),
    ("cancel", {"subscriptionId": "nope", "atPeriodEnd": "soon"}, 400, "invalid_field"),
    ("reactivate", {"subscriptionId": "00000000-0000-4000-8000-000000000000"}, 404,
     "not_found"),
    ("change", {"subscriptionId": "sub_x", "newResource": "monthly",
                "prorationBehavior": "sometimes"}, 400, "invalid_field"),
    ("change", {"subscriptionId": "sub_x"}, 400, "missing_field"),
    ("portal", {"customerId": "cus_1"}, 400, "missing_field"),
    ("portal", {"customerId": "bob", "returnUrl": "https://x.example"}, 400, "invalid_field"),
    ("portal", {"customerId": "cus_1", "returnUrl": "javascript:alert(1)"}, 400,
     "invalid_field"),
    ("stripe-session", {"resource": "monthly"}, 400, "missing_field"),
    ("stripe-session", {"resource": "monthly", "interval": "monthly"}, 400,
     "invalid_resource"),
])
async def test_bad_input_gets_spec_codes(buyer: Buyer, path: str, body: dict[str, Any],
                                         status: int, code: str) -> None:
    resp = await buyer.client.post(f"/paywall/v1/subscription/{path}", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b'"x"', b"{"])
async def test_garbage_bodies_are_400(buyer: Buyer, raw: bytes) -> None:
    for path in ("quote", "x402/activate", "stripe-session", "cancel", "change", "portal",
                 "reactivate"):
        resp = await buyer.client.post(f"/paywall/v1/subscription/{path}", content=raw,
                                       headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, (path, raw, resp.text)


async def test_status_needs_both_parameters(buyer: Buyer) -> None:
    resp = await buyer.client.get("/paywall/v1/subscription/status")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "missing_field"
    resp = await buyer.client.get("/paywall/v1/subscription/status", params={"userId": "x"})
    assert resp.json()["error"]["code"] == "missing_field"


QUOTE = """mutation($r: String!, $i: String!, $d: Int) {
  createSubscriptionQuote(resource: $r, interval: $i, intervalDays: $d) {
    requirement { resource x402 { maxAmountRequired memo } }
    subscription { interval durationSeconds periodStart periodEnd } } }"""
ACTIVATE = """mutation($p: String!, $w: String!, $s: String) {
  activateX402Subscription(productId: $p, wallet: $w, paymentSignature: $s) {
    subscriptionId status currentPeriodStart currentPeriodEnd billingPeriod
    quote { x402 { maxAmountRequired } } } }"""


async def graphql(world: Buyer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    resp = await world.client.post("/graphql", json={"query": query, "variables": variables})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_graphql_quote_and_activation(buyer: Buyer) -> None:
    body = await graphql(buyer, QUOTE, {"r": "monthly", "i": "monthly"})
    q = body["data"]["createSubscriptionQuote"]
    assert q["requirement"]["x402"]["maxAmountRequired"] == "2000000"
    assert q["subscription"]["interval"] == "monthly"
    bad = await graphql(buyer, QUOTE, {"r": "monthly", "i": "custom", "d": 0})
    assert [e["extensions"]["code"] for e in bad["errors"]] == ["invalid_field"]

    unpaid = (await graphql(buyer, ACTIVATE, {"p": "monthly", "w": buyer.wallet}))["data"]
    assert unpaid["activateX402Subscription"]["status"] == "inactive"
    assert unpaid["activateX402Subscription"]["quote"]["x402"]["maxAmountRequired"] == "2000000"
    signature = await buyer.pay(2_000_000)
    paid = (await graphql(buyer, ACTIVATE, {"p": "monthly", "w": buyer.wallet,
                                            "s": signature}))["data"]
    a = paid["activateX402Subscription"]
    assert (a["status"], a["billingPeriod"], a["quote"]) == ("active", "month", None)
    rest = (await buyer.status()).json()
    assert rest["active"] is True
    assert parse_rfc3339(rest["currentPeriodEnd"]) == parse_rfc3339(a["currentPeriodEnd"])
