"""Refunds end to end (issue 14): a real purchase on the sandbox chain, the buyer's signed
request, the admin's signed approval, the merchant wallet paying the quote through
POST /verify, and `refund.succeeded` reaching the merchant's receiver.

A real `cedros-pay serve` on SQLite and on PostgreSQL, one per backend for the module;
each test is a tenant of its own (X-Tenant-ID), so pending lists start empty for it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from solders.hash import Hash
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction
from support.served import BACKENDS, backend_of, sandbox_env, served
from support.webhook_receiver import Delivery, WebhookReceiver

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.integrations.solana.accounts import associated_token_address
from cedros_pay.sandbox import refund as refund_demo
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN_KEY = "refund-admin-key"
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article: {description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}
coupons: {coupon_source: disabled}
callbacks:
  payment_success_url: "URL"
  timeout: 2s
  poll_interval: 200ms
"""


def signed(key: Keypair, message: str) -> dict[str, str]:
    """The reference UI's signed-request headers."""
    signature = base64.b64encode(bytes(key.sign_message(message.encode()))).decode()
    return {"X-Signer": str(key.pubkey()), "X-Signature": signature, "X-Message": message}


@dataclass
class World:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    store: Store
    admin: Keypair
    receiver: WebhookReceiver
    tenant: str = "default"

    @property
    def merchant(self) -> Keypair:
        return self.sandbox.wallets.merchant

    @property
    def payer(self) -> Keypair:
        return self.sandbox.wallets.payer

    def balance(self, owner: Keypair) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(owner.pubkey(), d.usdc_mint)

    def transfer(self, amount: int, **kw: Any) -> VersionedTransaction:
        # A fresh block each time: tests share one chain and must never build equal bytes.
        return usdc_transfer(self.sandbox.devnet, amount,
                             blockhash=self.sandbox.chain.produce_blocks(1).blockhash, **kw)

    async def refund_events(self, refund_id: str) -> list[dict[str, Any]]:
        """The refund.succeeded deliveries for `refund_id`, once the first has arrived."""
        def mine(d: Delivery) -> bool:
            doc = d.json()
            return bool(doc.get("eventType") == "refund.succeeded"
                        and doc.get("refundId") == refund_id)
        return [d.json() for d in await self.receiver.matching(mine)]

    async def purchase(self, payer: Keypair | None = None) -> str:
        tx = self.transfer(1_500_000, payer=payer) if payer else self.transfer(1_500_000)
        resp = await self.client.post("/paywall/v1/verify", headers={
            "X-PAYMENT": v0_payment_header(tx, "article")})
        assert resp.status_code == 200, resp.text
        return str(tx.signatures[0])

    async def request(self, purchase: str, *, by: Keypair | None = None,
                      amount: Any = 0.89, recipient: str | None = None) -> httpx.Response:
        return await self.client.post("/paywall/v1/refunds/request", json={
            "originalPurchaseId": purchase,
            "recipientWallet": recipient or str(self.payer.pubkey()),
            "amount": amount, "token": "USDC", "reason": "changed my mind"},
            headers=signed(by or self.payer, f"request-refund:{purchase}"))

    async def nonce(self, purpose: str) -> str:
        resp = await self.client.post("/paywall/v1/nonce", json={"purpose": purpose})
        nonce: str = resp.json()["nonce"]
        return nonce

    async def pending(self, by: Keypair | None = None, nonce: str | None = None,
                      ) -> httpx.Response:
        nonce = nonce or await self.nonce("refund_list")
        return await self.client.post(
            "/paywall/v1/refunds/pending", json={"nonce": nonce},
            headers=signed(by or self.merchant, f"list-pending-refunds:{nonce}"))

    async def approve(self, refund_id: str, by: Keypair | None = None) -> httpx.Response:
        return await self.client.post("/paywall/v1/refunds/approve", json={"refundId": refund_id},
                                      headers=signed(by or self.merchant,
                                                     f"approve-refund:{refund_id}"))

    async def deny(self, refund_id: str, by: Keypair | None = None) -> httpx.Response:
        return await self.client.post("/paywall/v1/refunds/deny", json={"refundId": refund_id},
                                      headers=signed(by or self.merchant,
                                                     f"deny-refund:{refund_id}"))

    def refund_tx(self, refund_id: str, amount: int, *, payer: Keypair | None = None,
                  memo: str | None = None, **kw: Any) -> VersionedTransaction:
        return self.transfer(amount, payer=payer or self.merchant,
                             recipient_owner=self.payer.pubkey(),
                             memo=memo if memo is not None else f"refund:{refund_id}", **kw)

    async def execute(self, tx: VersionedTransaction, refund_id: str) -> httpx.Response:
        return await self.client.post("/paywall/v1/verify", headers={
            "X-PAYMENT": v0_payment_header(tx, refund_id, resource_type="refund")})

    async def approved(self, amount: Any = 0.89) -> str:
        """A purchase, its refund requested and approved: the refund id."""
        resp = await self.request(await self.purchase(), amount=amount)
        assert resp.status_code == 201, resp.text
        refund_id: str = resp.json()["refundId"]
        assert (await self.approve(refund_id)).status_code == 200
        return refund_id


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The module's server on one backend, its receiver and admin key."""
    backend, postgres = backend_of(request)
    receiver = WebhookReceiver().up()
    admin = Keypair()
    try:
        async with running_devnet_sandbox() as sb, served(
                CATALOG.replace("URL", receiver.url), tmp_path_factory.mktemp(
                    f"refunds-{backend}"), backend, postgres=postgres,
                env=sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml",
                                COUPON_SOURCE="disabled",
                                CEDROS_ADMIN_PUBLIC_KEY_1=str(admin.pubkey()),
                                CEDROS_ADMIN_API_KEY_1=ADMIN_KEY)) as running:
            yield World(sb, running.client, running.store, admin, receiver)
    finally:
        receiver.down()


@pytest.fixture
def world(server: World) -> World:
    """The module's server seen as a tenant of this test's own."""
    tenant = f"t{uuid.uuid4().hex[:12]}"
    server.client.headers["X-Tenant-ID"] = tenant
    return replace(server, tenant=tenant)


def code(resp: httpx.Response) -> str:
    value: str = resp.json()["error"]["code"]
    return value


# --- request -------------------------------------------------------------------------------


async def test_the_payer_opens_one_pending_refund_per_purchase(world: World) -> None:
    purchase = await world.purchase()
    first = await world.request(purchase)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["refundId"].startswith("refund_") and len(body["refundId"]) == 39
    assert (body["status"], body["amount"], body["token"]) == ("pending", 0.89, "USDC")
    assert body["createdAt"].endswith("Z") and body["message"]
    stored = await world.store.refunds.get(world.tenant, body["refundId"])
    assert stored is not None and stored.amount_atomic == 890_000
    again = await world.request(purchase)
    assert again.status_code == 200
    assert again.json()["refundId"] == body["refundId"]


async def test_a_request_needs_the_payers_valid_signature(world: World) -> None:
    purchase = await world.purchase()
    stranger = Keypair()
    assert code(await world.request(purchase, by=stranger)) == "unauthorized_refund_issuer"
    assert (await world.request(purchase, by=stranger)).status_code == 403
    forged = signed(world.payer, f"request-refund:{purchase}")
    forged["X-Signature"] = base64.b64encode(bytes(64)).decode()
    resp = await world.client.post("/paywall/v1/refunds/request", json={
        "originalPurchaseId": purchase, "recipientWallet": str(world.payer.pubkey()),
        "amount": 1, "token": "USDC"}, headers=forged)
    assert code(resp) == "invalid_signature"
    wrong_message = signed(world.payer, "request-refund:something-else")
    resp = await world.client.post("/paywall/v1/refunds/request", json={
        "originalPurchaseId": purchase, "recipientWallet": str(world.payer.pubkey()),
        "amount": 1, "token": "USDC"}, headers=wrong_message)
    assert code(resp) == "invalid_signature"
    assert await world.store.refunds.list_pending(world.tenant) == []


async def test_someone_elses_purchase_cannot_be_refunded_to_me(world: World) -> None:
    other = Keypair()
    chain = world.sandbox.chain
    chain.airdrop(other.pubkey(), 1_000_000_000)
    chain.create_token_account(other.pubkey(), world.sandbox.devnet.usdc_mint)
    chain.mint_to(other.pubkey(), world.sandbox.devnet.usdc_mint, 2_000_000)
    theirs = await world.purchase(payer=other)
    resp = await world.request(theirs, by=world.payer)
    assert code(resp) == "unauthorized_refund_issuer"


async def test_amounts_over_the_paid_or_finer_than_a_unit_are_refused(world: World) -> None:
    purchase = await world.purchase()
    assert code(await world.request(purchase, amount=1.500001)) == "invalid_amount"
    assert code(await world.request(purchase, amount=0.1 + 0.2)) == "invalid_amount"
    assert code(await world.request(purchase, amount=0)) == "invalid_amount"
    assert code(await world.request(purchase, amount=-1)) == "invalid_amount"
    ok = await world.request(purchase, amount=1.5)
    assert ok.status_code == 201, ok.text


# --- admin: pending, approve, deny --------------------------------------------------------


async def test_pending_needs_a_fresh_nonce_of_its_purpose_and_an_admin(world: World) -> None:
    refund_id = (await world.request(await world.purchase())).json()["refundId"]
    nonce = await world.nonce("refund_list")
    listed = await world.pending(nonce=nonce)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["refunds"]
    assert (item["id"], item["amount"], item["status"], item["token"]) == (
        refund_id, 0.89, "pending", "USDC")
    reused = await world.pending(nonce=nonce)
    assert reused.status_code == 401 and "refunds" not in reused.json()
    assert reused.json()["error"]["details"]["reason"] == "already_used"
    wrong = await world.pending(nonce=await world.nonce("refund_approve"))
    assert wrong.json()["error"]["details"]["reason"] == "wrong_purpose"
    stranger = await world.pending(by=Keypair())
    assert code(stranger) == "unauthorized_refund_issuer"
    wildcard = await world.pending(nonce=await world.nonce(""))
    assert wildcard.status_code == 200
    by_admin_key = await world.pending(by=world.admin)
    assert by_admin_key.status_code == 200


async def test_approve_quotes_exactly_the_refund_for_the_merchant_to_pay(world: World) -> None:
    refund_id = (await world.request(await world.purchase())).json()["refundId"]
    assert code(await world.approve(refund_id, by=Keypair())) == "unauthorized_refund_issuer"
    resp = await world.approve(refund_id, by=world.admin)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    quote = body["quote"]
    mint = str(world.sandbox.devnet.usdc_mint)
    assert body["refundId"] == refund_id and body["expiresAt"].endswith("Z")
    assert (quote["amount"], quote["asset"], quote["extra"]["memo"]) == (
        "890000", mint, f"refund:{refund_id}")
    assert quote["payTo"] == associated_token_address(str(world.payer.pubkey()), mint)
    assert quote["extra"]["feePayer"] == str(world.merchant.pubkey())
    listed = (await world.pending()).json()["refunds"]
    assert [r["status"] for r in listed] == ["approved"]


async def test_deny_removes_the_refund(world: World) -> None:
    refund_id = (await world.request(await world.purchase())).json()["refundId"]
    assert code(await world.deny(refund_id, by=Keypair())) == "unauthorized_refund_issuer"
    resp = await world.deny(refund_id)
    assert resp.json() == {"success": True, "message": "refund denied"}
    assert (await world.pending()).json()["refunds"] == []
    assert code(await world.deny(refund_id)) == "refund_not_found"
    assert code(await world.approve(refund_id)) == "refund_not_found"
    other = (await world.request(await world.purchase())).json()["refundId"]
    assert (await world.deny(other, by=world.admin)).status_code == 200


async def test_body_form_nonce_signature_is_accepted(world: World) -> None:
    refund_id = (await world.request(await world.purchase())).json()["refundId"]
    nonce = await world.nonce("refund_deny")
    sig58 = str(world.merchant.sign_message(nonce.encode()))
    resp = await world.client.post("/paywall/v1/refunds/deny", json={
        "refundId": refund_id, "nonce": nonce, "signature": sig58})
    assert resp.status_code == 200, resp.text
    again = await world.client.post("/paywall/v1/refunds/pending", json={
        "nonce": nonce, "signature": sig58})
    assert again.status_code == 401


# --- execution ----------------------------------------------------------------------------


async def test_the_exact_quote_moves_the_money_once_and_tells_the_merchant(
        world: World) -> None:
    refund_id = await world.approved()
    before_payer, before_merchant = world.balance(world.payer), world.balance(world.merchant)
    for off in (890_001, 889_999):
        resp = await world.execute(world.refund_tx(refund_id, off), refund_id)
        assert code(resp) in ("amount_mismatch", "amount_below_minimum")
    assert world.balance(world.payer) == before_payer
    tx = world.refund_tx(refund_id, 890_000)
    resp = await world.execute(tx, refund_id)
    assert resp.status_code == 200, resp.text
    assert resp.json()["resourceType"] == "refund"
    assert world.balance(world.payer) - before_payer == 890_000
    assert before_merchant - world.balance(world.merchant) == 890_000
    stored = await world.store.refunds.get(world.tenant, refund_id)
    assert stored is not None and stored.signature == str(tx.signatures[0])
    again = await world.execute(tx, refund_id)
    assert code(again) in ("refund_already_processed", "payment_already_used")
    purchase = stored.original_purchase_id
    assert code(await world.request(purchase)) == "refund_already_processed"
    [event] = await world.refund_events(refund_id)
    assert (event["refundId"], event["originalPurchaseId"], event["recipientWallet"],
            event["atomicAmount"], event["token"], event["processedBy"],
            event["signature"]) == (refund_id, purchase, str(world.payer.pubkey()), 890_000,
                                    "USDC", str(world.merchant.pubkey()), str(tx.signatures[0]))
    assert event["reason"] == "changed my mind" and event["refundedAt"].endswith("Z")


async def test_only_the_merchant_wallet_pays_a_refund(world: World) -> None:
    refund_id = await world.approved()
    before = world.balance(world.payer)
    stranger_pays = world.transfer(890_000, recipient_owner=world.payer.pubkey(),
                                   memo=f"refund:{refund_id}")
    assert code(await world.execute(stranger_pays, refund_id)) == "unauthorized_refund_issuer"
    no_memo = world.refund_tx(refund_id, 890_000, memo="")
    assert code(await world.execute(no_memo, refund_id)) in ("missing_memo", "invalid_memo")
    assert world.balance(world.payer) == before


async def test_refund_and_payment_signatures_never_cross(world: World) -> None:
    refund_id = await world.approved()
    tx = world.refund_tx(refund_id, 890_000)
    assert (await world.execute(tx, refund_id)).status_code == 200
    as_payment = await world.client.post("/paywall/v1/verify", headers={
        "X-PAYMENT": v0_payment_header(tx, "article")})
    assert code(as_payment) == "payment_already_used"
    second = await world.approved()
    payment_tx = world.transfer(1_500_000)
    assert (await world.client.post("/paywall/v1/verify", headers={
        "X-PAYMENT": v0_payment_header(payment_tx, "article")})).status_code == 200
    as_refund = await world.execute(payment_tx, second)
    assert as_refund.status_code >= 400
    assert (await world.store.refunds.get(world.tenant, second)) is not None


async def test_concurrent_executions_settle_one(world: World) -> None:
    refund_id = await world.approved()
    before = world.balance(world.payer)
    # Three different transactions for one refund (their priority fees differ).
    txs = [world.refund_tx(refund_id, 890_000, compute_unit_price=i + 1) for i in range(3)]
    results = await asyncio.gather(*(world.execute(tx, refund_id) for tx in txs))
    assert sorted(r.status_code == 200 for r in results) == [False, False, True]
    assert world.balance(world.payer) - before == 890_000


async def test_an_unapproved_or_unknown_refund_cannot_be_executed(world: World) -> None:
    resp = await world.request(await world.purchase())
    refund_id = resp.json()["refundId"]
    before = world.balance(world.payer)
    assert code(await world.execute(world.refund_tx(refund_id, 890_000), refund_id)) == (
        "invalid_resource")
    unknown = "refund_" + "0" * 32
    assert code(await world.execute(world.refund_tx(unknown, 890_000), unknown)) == (
        "refund_not_found")
    assert world.balance(world.payer) == before


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("request", b"not json", "invalid_field"),
    ("request", b"[1]", "invalid_field"),
    ("request", b"{}", "missing_field"),
    ("request", b'{"originalPurchaseId": 3, "recipientWallet": "x", "amount": 1,'
                b' "token": "USDC"}', "invalid_field"),
    ("request", b'{"originalPurchaseId": "p", "recipientWallet": "nope", "amount": 1,'
                b' "token": "USDC"}', "invalid_wallet"),
    ("request", b'{"originalPurchaseId": "p", "recipientWallet": "' + b"1" * 32 +
                b'", "amount": "abc", "token": "USDC"}', "unauthorized"),
    ("request", b'{"originalPurchaseId": "p", "recipientWallet": "' + b"1" * 32 +
                b'", "amount": [1], "token": "USDC"}', "invalid_amount"),
    ("pending", b"{}", "unauthorized"),
    ("pending", b'{"nonce": 5}', "unauthorized"),
    ("approve", b"{}", "missing_field"),
    ("approve", b'{"refundId": "refund_x"}', "invalid_field"),
    ("approve", b'{"refundId": {"a": 1}}', "invalid_field"),
    ("deny", b'{"refundId": "refund_' + b"a" * 32 + b'"}', "unauthorized"),
    ("deny", b"\xff\xfe", "invalid_field"),
])
async def test_bad_input_gets_a_spec_code(world: World, path: str, body: bytes,
                                          expected: str) -> None:
    resp = await world.client.post(f"/paywall/v1/refunds/{path}", content=body,
                                   headers={"Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text
    assert code(resp) == expected


async def test_garbage_signed_headers_are_refused_cleanly(world: World) -> None:
    for headers in ({"X-Signer": "x", "X-Signature": "y", "X-Message": "z"},
                    {"X-Signer": "1" * 44, "X-Signature": "!!",
                     "X-Message": "list-pending-refunds:"},
                    {"X-Signer": str(world.merchant.pubkey()), "X-Signature": "A" * 200,
                     "X-Message": "list-pending-refunds:abc"}):
        resp = await world.client.post("/paywall/v1/refunds/pending", json={},
                                       headers=headers)
        assert 400 <= resp.status_code < 500, resp.text
        assert code(resp) in ("invalid_signature", "unauthorized")


# --- GraphQL ------------------------------------------------------------------------------

REFUNDS = "query($s: String) { refunds(first: 10, status: $s) { totalCount edges { node {" \
          " id status token amount { atomic } } } } }"
APPROVE = "mutation($id: ID!) { approveRefund(id: $id) { quote expiresAt refund { status } } }"
DENY = "mutation($id: ID!) { denyRefund(id: $id) { id status } }"
REQUEST = """mutation($i: RequestRefundInput!) { requestRefund(input: $i) {
  id status amount { atomic } } }"""


async def gql(world: World, query: str, admin: bool = True, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"} if admin else {}
    resp = await world.client.post("/graphql", json={"query": query, "variables": variables},
                                   headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_graphql_request_list_approve_and_deny(world: World) -> None:
    purchase = await world.purchase()
    message = f"request-refund:{purchase}"
    sig = signed(world.payer, message)
    asked = await gql(world, REQUEST, admin=False, i={
        "originalPurchaseId": purchase, "recipientWallet": str(world.payer.pubkey()),
        "amount": "0.89", "token": "USDC", "signer": sig["X-Signer"],
        "signature": sig["X-Signature"], "message": message})
    refund = asked["data"]["requestRefund"]
    assert (refund["status"], refund["amount"]["atomic"]) == ("pending", "890000")
    forged = await gql(world, REQUEST, admin=False, i={
        "originalPurchaseId": purchase, "recipientWallet": str(world.payer.pubkey()),
        "amount": "0.89", "token": "USDC", "signer": str(Keypair().pubkey()),
        "signature": sig["X-Signature"], "message": message})
    assert forged["errors"][0]["extensions"]["code"] == "invalid_signature"
    anonymous = await gql(world, REFUNDS, admin=False)
    assert anonymous["data"] is None or anonymous["data"]["refunds"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "unauthorized"
    listed = (await gql(world, REFUNDS))["data"]["refunds"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["id"] == refund["id"]
    assert (await gql(world, APPROVE, admin=False, id=refund["id"]))["errors"][0][
        "extensions"]["code"] == "unauthorized"
    approved = (await gql(world, APPROVE, id=refund["id"]))["data"]["approveRefund"]
    assert approved["quote"]["amount"] == "890000" and approved["refund"]["status"] == "approved"
    assert (await gql(world, REFUNDS, s="pending"))["data"]["refunds"]["totalCount"] == 0
    bad = await gql(world, REFUNDS, s="nonsense")
    assert bad["errors"][0]["extensions"]["code"] == "invalid_field"
    denied = (await gql(world, DENY, id=refund["id"]))["data"]["denyRefund"]
    assert denied["id"] == refund["id"]
    gone = await gql(world, DENY, id=refund["id"])
    assert gone["errors"][0]["extensions"]["code"] == "refund_not_found"
    garbage = await gql(world, DENY, id="refund_nope")
    assert garbage["errors"][0]["extensions"]["code"] == "invalid_field"


async def test_a_transaction_the_node_refuses_gives_the_claim_back(world: World) -> None:
    refund_id = await world.approved()
    before = world.balance(world.payer)
    stale = usdc_transfer(world.sandbox.devnet, 890_000, blockhash=Hash.new_unique(),
                          payer=world.merchant, recipient_owner=world.payer.pubkey(),
                          memo=f"refund:{refund_id}")
    refused = await world.execute(stale, refund_id)
    assert refused.status_code >= 400
    assert code(refused) == "transaction_expired", \
        refused.text
    assert world.balance(world.payer) == before
    ok = await world.execute(world.refund_tx(refund_id, 890_000), refund_id)
    assert ok.status_code == 200, ok.text
    assert world.balance(world.payer) - before == 890_000


async def test_no_new_quote_or_denial_while_a_sent_transaction_may_land(world: World) -> None:
    refund_id = await world.approved()
    stored = await world.store.refunds.get(world.tenant, refund_id)
    assert stored is not None
    sent = datetime.now(UTC)
    stored.metadata.update({"cedros.attempt": "5" * 88, "cedros.attempt_at": to_rfc3339(sent)})
    await world.store.refunds.save(stored)
    for resp in (await world.approve(refund_id), await world.deny(refund_id)):
        assert code(resp) == "invalid_resource"
        assert resp.json()["error"]["details"]["reason"] == "execution_in_flight"
    stored.metadata["cedros.attempt_at"] = to_rfc3339(sent - timedelta(minutes=3))
    await world.store.refunds.save(stored)
    assert (await world.approve(refund_id)).status_code == 200


async def test_racing_requests_open_one_refund_and_one_decision_wins(world: World) -> None:
    w, store = world, world.store
    purchase = await w.purchase()
    firsts = await asyncio.gather(*(w.request(purchase) for _ in range(10)))
    assert sorted(r.status_code for r in firsts) == [200] * 9 + [201]
    assert len({r.json()["refundId"] for r in firsts}) == 1
    assert len((await w.pending()).json()["refunds"]) == 1
    for i in range(4):
        # Approve racing deny. Deny after a finished approval is a later decision
        # and wins too; what may never happen is an answered denial with the
        # refund still there (an approval writing it back).
        refund_id = (await w.request(await w.purchase())).json()["refundId"]
        calls = [w.approve(refund_id), w.deny(refund_id)]
        approve, deny = await asyncio.gather(*(calls if i % 2 else calls[::-1]))
        if i % 2 == 0:
            approve, deny = deny, approve
        stored = await store.refunds.get(w.tenant, refund_id)
        if deny.status_code == 200:
            assert stored is None
            assert approve.status_code == 200 or code(approve) == "refund_not_found"
        else:
            assert code(deny) == "refund_already_processed"
            assert approve.status_code == 200, approve.text
            assert stored is not None and stored.metadata.get("cedros.approved_at")
            assert (await w.pending()).json()["refunds"][-1]["status"] == "approved"


async def test_the_readme_walkthrough_refunds_a_purchase(world: World) -> None:
    """`python -m cedros_pay.sandbox.refund` (the README's commands), against the app."""
    purchase = await world.purchase()
    before = world.balance(world.payer)
    lines: list[str] = []
    async with httpx.AsyncClient() as rpc:
        settled = await refund_demo.refund(
            world.client, rpc, world.sandbox.url, purchase=purchase, amount="0.5",
            token="USDC", payer=world.payer, merchant=world.merchant, reason="demo",
            say=lines.append)
    assert settled["resourceType"] == "refund" and settled["amount"] == "500000"
    assert world.balance(world.payer) - before == 500_000
    assert [line.split()[0] for line in lines] == [
        "request", "pending", "approve", "sign", "settle"]
