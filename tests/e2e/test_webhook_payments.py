"""A real x402 payment becomes a delivered webhook (issue 12): the sandbox chain, a real
`cedros-pay serve` (SQLite and PostgreSQL), its queueing notifier and worker, a receiver
on 127.0.0.1. The delivery latency is a figure of bench/, not asserted here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.served import BACKENDS, sandbox_env, served
from support.webhook_receiver import WebhookReceiver

from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import running_devnet_sandbox, usdc_transfer

pytestmark = pytest.mark.parametrize("backend", BACKENDS)

PAYMENTS = 20
# The worker polls once an hour: a delivery within the test's deadline can only come
# from the notifier waking it when the payment's event is queued.
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
ENV = {"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "disabled"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


async def test_paid_resources_reach_the_merchant_once_each(
        backend: str, tmp_path: Path, receiver: WebhookReceiver,
        request: pytest.FixtureRequest) -> None:
    postgres = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    async with running_devnet_sandbox() as sb, served(
            CATALOG.replace("URL", receiver.url), tmp_path, backend, postgres=postgres,
            env=sandbox_env(sb, **ENV)) as server:
        signatures = []
        for _ in range(PAYMENTS):
            tx = usdc_transfer(sb.devnet, 1_500_000,
                               blockhash=sb.chain.produce_blocks(1).blockhash)
            resp = await server.client.post("/paywall/v1/verify", headers={
                "X-PAYMENT": v0_payment_header(tx, "article")})
            assert resp.status_code == 200, resp.text
            signatures.append(str(tx.signatures[0]))
        got = await receiver.arrived(PAYMENTS, within=60)
    bodies = [d.json() for d in got]
    assert sorted(b["proofSignature"] for b in bodies) == sorted(signatures)
    assert len({b["eventId"] for b in bodies}) == PAYMENTS
    for b in bodies:
        assert (b["eventType"], b["resourceId"], b["method"], b["cryptoAtomicAmount"],
                b["cryptoToken"]) == ("payment.succeeded", "article", "x402", 1_500_000, "USDC")
        assert b["wallet"] == str(sb.wallets.payer.pubkey())


async def test_an_archived_payment_still_cannot_pay_again(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Spec 11 archival with a tiny retention: the worker moves the payment out of the hot
    table, and replaying its signature is still refused (issue 12)."""
    postgres = request.getfixturevalue("postgres_server") if backend == "postgres" else None
    async with running_devnet_sandbox() as sb, served(
            CATALOG.replace("URL", ""), tmp_path, backend, postgres=postgres,
            env=sandbox_env(sb, **ENV),
            storage="archival: {enabled: true, retention_period: 1ms, run_interval: 50ms}",
            ) as server:
        tx = usdc_transfer(sb.devnet, 1_500_000, blockhash=sb.chain.latest_block.blockhash)
        header = {"X-PAYMENT": v0_payment_header(tx, "article")}
        paid = await server.client.post("/paywall/v1/verify", headers=header)
        assert paid.status_code == 200, paid.text
        signature = str(tx.signatures[0])
        deadline = time.monotonic() + 30
        while await server.store.payments.get("default", signature) is not None:
            assert time.monotonic() < deadline, "the payment was never archived"
            await asyncio.sleep(0.05)
        again = await server.client.post("/paywall/v1/verify", headers=header)
        assert again.status_code == 402
        assert again.json()["error"]["code"] == "payment_already_used"
