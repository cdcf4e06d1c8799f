"""A real x402 payment becomes a delivered webhook (issue 12): the sandbox chain, the app
over HTTP, the queueing notifier, the worker, a receiver on 127.0.0.1. Prints the delivery
latency from the payment being recorded (`eventTimestamp`) to the receiver (p50, p99)."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.conftest import client_for, config_from
from support.webhook_receiver import WebhookReceiver

from cedros_pay.app import create_app
from cedros_pay.config import Config
from cedros_pay.core.clock import parse_rfc3339
from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.open import open_store

PAYMENTS = 20
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article: {description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}
coupons: {coupon_source: disabled}
callbacks:
  payment_success_url: "URL"
  timeout: 2s
  poll_interval: 1s
  hmac_secret: latency-secret
"""


def _config(sb: RunningSandbox, yaml: Path) -> Config:
    return config_from({
        "CEDROS_X402_RPC_URL": sb.url, "CEDROS_X402_WS_URL": sb.ws_url,
        "CEDROS_X402_PAYMENT_ADDRESS": str(sb.wallets.merchant.pubkey()),
        "CEDROS_X402_TOKEN_MINT": str(sb.devnet.usdc_mint),
        "CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "disabled",
    }, yaml_path=str(yaml))


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


async def test_paid_resources_reach_the_merchant_once_each(tmp_path: Path,
                                                           receiver: WebhookReceiver) -> None:
    (tmp_path / "cfg.yaml").write_text(CATALOG.replace("URL", receiver.url))
    store = await open_store("sqlite", file_path=str(tmp_path / "pay.db"))
    async with running_devnet_sandbox() as sb:
        cfg = _config(sb, tmp_path / "cfg.yaml")
        signatures = []
        async with client_for(create_app(cfg, store=store)) as client:
            for _ in range(PAYMENTS):
                tx = usdc_transfer(sb.devnet, 1_500_000,
                                   blockhash=sb.chain.latest_block.blockhash)
                resp = await client.post("/paywall/v1/verify", headers={
                    "X-PAYMENT": v0_payment_header(tx, "article")})
                assert resp.status_code == 200, resp.text
                signatures.append(str(tx.signatures[0]))
            got = await receiver.arrived(PAYMENTS, within=20)
    await store.close()
    bodies = [d.json() for d in got]
    assert sorted(b["proofSignature"] for b in bodies) == sorted(signatures)
    assert len({b["eventId"] for b in bodies}) == PAYMENTS
    for b in bodies:
        assert (b["eventType"], b["resourceId"], b["method"], b["cryptoAtomicAmount"],
                b["cryptoToken"]) == ("payment.succeeded", "article", "x402", 1_500_000, "USDC")
        assert b["wallet"] == str(sb.wallets.payer.pubkey())
    latencies = sorted((d.wall - parse_rfc3339(d.json()["eventTimestamp"]).timestamp()) * 1000
                       for d in got)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(f"\npayment -> receiver latency over {PAYMENTS}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    # Woken on enqueue: far sooner than the 1 s poll interval.
    assert p50 < 500


async def test_an_archived_payment_still_cannot_pay_again(tmp_path: Path) -> None:
    """Spec 11 archival with a tiny retention: the worker moves the payment out of the hot
    table, and replaying its signature is still refused (issue 12)."""
    (tmp_path / "cfg.yaml").write_text(CATALOG.replace("URL", "") + """
storage:
  archival: {enabled: true, retention_period: 1ms, run_interval: 50ms}
""")
    store = await open_store("sqlite", file_path=str(tmp_path / "archive.db"))
    async with running_devnet_sandbox() as sb:
        cfg = _config(sb, tmp_path / "cfg.yaml")
        async with client_for(create_app(cfg, store=store)) as client:
            tx = usdc_transfer(sb.devnet, 1_500_000, blockhash=sb.chain.latest_block.blockhash)
            header = {"X-PAYMENT": v0_payment_header(tx, "article")}
            assert (await client.post("/paywall/v1/verify", headers=header)).status_code == 200
            signature = str(tx.signatures[0])
            for _ in range(200):
                if await store.payments.get("default", signature) is None:
                    break
                await asyncio.sleep(0.02)
            assert await store.payments.get("default", signature) is None  # archived
            again = await client.post("/paywall/v1/verify", headers=header)
            assert again.status_code == 402
            assert again.json()["error"]["code"] == "payment_already_used"
    await store.close()
