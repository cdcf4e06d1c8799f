"""A real x402 payment becomes a delivered webhook (issue 12): the sandbox chain, a real
`cedros-pay serve` (SQLite and PostgreSQL, one per backend for the module), its queueing
notifier and worker, a receiver on 127.0.0.1. The delivery latency is a figure of
bench/sandbox_payments.py, not asserted here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from support.served import BACKENDS, Served, backend_of, sandbox_env, served
from support.webhook_receiver import WebhookReceiver

from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYMENTS = 20
# The worker polls once an hour: a delivery within the test's deadline can only come
# from the notifier waking it when the payment's event is queued. Archival runs with a
# tiny retention (spec 11), so a payment leaves the hot table moments after it settles.
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article: {description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}
coupons: {coupon_source: disabled}
callbacks:
  payment_success_url: "URL"
  timeout: 2s
  poll_interval: 1h
  hmac_secret: latency-secret
"""
ARCHIVAL = "archival: {enabled: true, retention_period: 1ms, run_interval: 50ms}"


@dataclass
class World:
    sandbox: RunningSandbox
    server: Served
    receiver: WebhookReceiver

    def transfer(self, amount: int) -> tuple[str, dict[str, str]]:
        """A fresh payment's signature and X-PAYMENT header."""
        tx = usdc_transfer(self.sandbox.devnet, amount,
                           blockhash=self.sandbox.chain.produce_blocks(1).blockhash)
        return str(tx.signatures[0]), {"X-PAYMENT": v0_payment_header(tx, "article")}


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def world(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    backend, postgres = backend_of(request)
    receiver = WebhookReceiver().up()
    try:
        async with running_devnet_sandbox() as sb, served(
                CATALOG.replace("URL", receiver.url), tmp_path_factory.mktemp(
                    f"hooks-{backend}"), backend, postgres=postgres, storage=ARCHIVAL,
                env=sandbox_env(sb, CEDROS_PAYWALL_PRODUCT_SOURCE="yaml",
                                COUPON_SOURCE="disabled")) as server:
            yield World(sb, server, receiver)
    finally:
        receiver.down()


async def test_paid_resources_reach_the_merchant_once_each(world: World) -> None:
    signatures = []
    for _ in range(PAYMENTS):
        signature, header = world.transfer(1_500_000)
        resp = await world.server.client.post("/paywall/v1/verify", headers=header)
        assert resp.status_code == 200, resp.text
        signatures.append(signature)
    got = await world.receiver.matching(
        lambda d: d.json().get("proofSignature") in signatures, PAYMENTS, within=60)
    bodies = [d.json() for d in got]
    assert sorted(b["proofSignature"] for b in bodies) == sorted(signatures)
    assert len({b["eventId"] for b in bodies}) == PAYMENTS
    for b in bodies:
        assert (b["eventType"], b["resourceId"], b["method"], b["cryptoAtomicAmount"],
                b["cryptoToken"]) == ("payment.succeeded", "article", "x402", 1_500_000, "USDC")
        assert b["wallet"] == str(world.sandbox.wallets.payer.pubkey())


async def test_an_archived_payment_still_cannot_pay_again(world: World) -> None:
    """The worker moves the payment out of the hot table, and replaying its signature is
    still refused (issue 12)."""
    signature, header = world.transfer(1_500_000)
    paid = await world.server.client.post("/paywall/v1/verify", headers=header)
    assert paid.status_code == 200, paid.text
    deadline = time.monotonic() + 30
    while await world.server.store.payments.get("default", signature) is not None:
        assert time.monotonic() < deadline, "the payment was never archived"
        await asyncio.sleep(0.05)
    again = await world.server.client.post("/paywall/v1/verify", headers=header)
    assert again.status_code == 402
    assert again.json()["error"]["code"] == "payment_already_used"
