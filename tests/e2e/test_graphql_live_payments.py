"""A dashboard watching payments live: a real WebSocket client subscribed to
`paymentEvents` sees a real x402 payment, settled through the sandbox chain over
POST /paywall/v1/verify, the moment it settles; then finds it with the queries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.test_x402_payments import CATALOG, _config, payment_header
from support.graphql_ws import GraphQLSocket, eventually, serving

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.resolvers.events import PaymentEventHub
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.store import memory_store

ADMIN_KEY = "live-dashboard-admin-key-0123456789"
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
EVENTS = """subscription { paymentEvents { eventId eventType resource method wallet
  signature amount { atomic decimals asset display } paidAt metadata } }"""


@dataclass
class Live:
    sandbox: RunningSandbox
    app: CedrosApp
    url: str

    @property
    def hub(self) -> PaymentEventHub:
        assert self.app.services is not None
        return self.app.services.payment_events

    async def pay(self, amount: int, resource: str,
                  tenant: str | None = None) -> tuple[str, httpx.Response]:
        """A signed USDC transfer from the sandbox payer, presented as an X-PAYMENT."""
        d = self.sandbox.devnet
        tx = usdc_transfer(d, amount, blockhash=d.chain.latest_block.blockhash)
        headers = {"X-PAYMENT": payment_header(tx, resource)}
        if tenant:
            headers["X-Tenant-ID"] = tenant
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            resp = await http.post("/paywall/v1/verify", headers=headers)
        return str(tx.signatures[0]), resp


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    async with running_devnet_sandbox() as sb:
        config = _config(sb, str(tmp_path / "catalog.yaml"),
                         CEDROS_ADMIN_API_KEY_1=ADMIN_KEY)
        app = create_app(config, store=memory_store())
        async with serving(app) as url:
            yield Live(sb, app, url)


def event_of(message: dict[str, Any], op_id: str) -> dict[str, Any]:
    assert (message["type"], message["id"]) == ("next", op_id), message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["paymentEvents"]
    return event


async def test_subscriber_sees_a_sandbox_payment_as_it_settles(live: Live) -> None:
    async with GraphQLSocket.open(live.url) as sock:
        assert (await sock.init(ADMIN))["type"] == "connection_ack"
        await sock.subscribe("payments", EVENTS)
        # Events are not replayed: pay only once the server holds the subscription.
        await eventually(lambda: live.hub.subscriber_count == 1, "the subscription")

        signature, resp = await live.pay(1_500_000, "article")
        assert resp.status_code == 200, resp.text

        event = event_of(await sock.receive(), "payments")
    assert event["signature"] == signature
    assert event["amount"] == {"atomic": "1500000", "decimals": 6, "asset": "USDC",
                               "display": "1.50 USDC"}
    assert (event["eventType"], event["method"], event["resource"]) == (
        "payment.succeeded", "X402", "article")
    assert event["wallet"] == str(live.sandbox.wallets.payer.pubkey())
    assert event["eventId"].startswith("evt_")
    assert event["metadata"]["resource_type"] == "regular"

    # The event and the ledger agree: the same payment through both queries.
    async with httpx.AsyncClient(base_url=live.url) as http:
        resp = await http.post("/graphql", headers={"Authorization": ADMIN["authorization"]},
                               json={"query": """query($s: String!) {
                                   payment(signature: $s) { signature amount { atomic }
                                                            paidAt wallet }
                                   payments(first: 5) { totalCount
                                       edges { node { signature } } } }""",
                                     "variables": {"s": signature}})
    data = resp.json()["data"]
    assert data["payment"] == {"signature": signature, "amount": {"atomic": "1500000"},
                               "paidAt": event["paidAt"], "wallet": event["wallet"]}
    assert data["payments"]["totalCount"] == 1
    assert data["payments"]["edges"][0]["node"]["signature"] == signature


async def test_each_tenants_subscriber_sees_only_its_own_payments(live: Live) -> None:
    async with (GraphQLSocket.open(live.url) as default_sock,
                GraphQLSocket.open(live.url, headers={"X-Tenant-ID": "acme"}) as acme_sock):
        for sock in (default_sock, acme_sock):
            assert (await sock.init(ADMIN))["type"] == "connection_ack"
            await sock.subscribe("mine", EVENTS)
        await eventually(lambda: live.hub.subscriber_count == 2, "both subscriptions")

        # The default tenant's payment settles first, yet acme's first event is its own.
        default_sig, first = await live.pay(1_500_000, "article")
        acme_sig, second = await live.pay(2_000_000, "video", tenant="acme")
        assert (first.status_code, second.status_code) == (200, 200), (first.text,
                                                                       second.text)

        acme_event = event_of(await acme_sock.receive(), "mine")
        default_event = event_of(await default_sock.receive(), "mine")
    assert (acme_event["signature"], acme_event["resource"]) == (acme_sig, "video")
    assert acme_event["amount"]["atomic"] == "2000000"
    assert (default_event["signature"], default_event["resource"]) == (default_sig, "article")
