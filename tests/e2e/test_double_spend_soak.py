"""The double-spend soak in miniature (issue 18; the full one is `python -m bench.soak`).

Two real `cedros-pay serve` processes on one PostgreSQL database and the sandbox chain.
Each of a few real payments is sent many times at once, half to each process, over every
route and header that settles a payment: a Cedros v0 transfer as X-PAYMENT, and an
official `exact` transfer (co-signed by the server as fee payer) as v2 PAYMENT-SIGNATURE
and as v1 X-PAYMENT. Exactly one copy of each is granted; the database holds one payment
row and one `payment.succeeded` event per payment, the merchant receives each webhook
once and is paid once per payment; every other copy is refused as a replay (402
`payment_already_used`), never a 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from support.process import ServeProcess, log_tail
from support.webhook_receiver import WebhookReceiver

from cedros_pay.sandbox.payer import v0_payment_header
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.sql.engine import create_postgres_engine
from cedros_pay.storage.sql.migrate import upgrade

pytestmark = pytest.mark.postgres

PAYMENTS = 5
COPIES = 10
PRICE = 20_000

CONFIG = """
x402:
  network: devnet
  rpc_url: "{rpc}"
  ws_url: "{ws}"
  payment_address: "{merchant}"
  token_mint: "{mint}"
  gasless_enabled: true
paywall:
  product_source: yaml
  resources:
    item: {{description: An item, crypto_atomic_amount: {price}, crypto_token: USDC}}
storage: {{backend: postgres, postgres_url: "{postgres_url}"}}
callbacks:
  payment_success_url: "{webhook}"
  timeout: 5s
  poll_interval: 100ms
logging: {{level: warn}}
"""


def _b64(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


@dataclass
class Attempt:
    """One copy of a payment: where it goes and how it is dressed."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, str] | None = None


@dataclass
class Cluster:
    sandbox: RunningSandbox
    urls: list[str]
    client: httpx.AsyncClient

    def merchant_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)

    def blockhash(self) -> Any:
        return self.sandbox.chain.latest_block.blockhash

    async def v0_attempts(self) -> list[Attempt]:
        tx = usdc_transfer(self.sandbox.devnet, PRICE, blockhash=self.blockhash())
        paid = {"X-PAYMENT": v0_payment_header(tx, "item")}
        return [Attempt("POST", "/paywall/v1/verify", paid), Attempt("GET", "/paywall/item", paid),
                Attempt("POST", "/paywall/item", paid),
                Attempt("POST", "/paywall/v1/quote", paid, {"resource": "item"})]

    async def exact_attempts(self) -> list[Attempt]:
        """One transaction against a fresh offer (its memo), dressed as v2 and as v1."""
        offered = await self.client.get(self.urls[0] + "/paywall/item")
        offer = json.loads(base64.b64decode(offered.headers["PAYMENT-REQUIRED"]))
        accepted = offer["accepts"][0]
        tx = usdc_transfer(self.sandbox.devnet, int(accepted["amount"]),
                           blockhash=self.blockhash(), memo=accepted["extra"]["memo"],
                           fee_payer=self.sandbox.wallets.server.pubkey(),
                           compute_unit_limit=20_000, compute_unit_price=1)
        raw = base64.b64encode(bytes(tx)).decode()
        v2 = {"PAYMENT-SIGNATURE": _b64({"x402Version": 2, "payload": {"transaction": raw},
                                         "accepted": accepted, "resource": offer["resource"]})}
        v1 = {"X-PAYMENT": _b64({"x402Version": 1, "scheme": "exact",
                                 "network": "solana-devnet", "payload": {"transaction": raw}})}
        return [Attempt("GET", "/paywall/item", v2), Attempt("GET", "/paywall/item", v1),
                Attempt("POST", "/paywall/item", v2),
                Attempt("POST", "/paywall/v1/quote", v1, {"resource": "item"}),
                Attempt("POST", "/paywall/v1/quote", v2, {"resource": "item"})]

    async def send_at_once(self, attempts: list[Attempt]) -> list[httpx.Response]:
        """COPIES copies, alternating processes, cycling through the attempts."""
        picked = [(self.urls[i % 2], attempts[(i // 2) % len(attempts)]) for i in range(COPIES)]
        return list(await asyncio.gather(*(
            self.client.request(a.method, url + a.path, headers=a.headers, json=a.body)
            for url, a in picked)))


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[tuple[Cluster, WebhookReceiver]]:
    engine = create_postgres_engine(postgres_url)
    await upgrade(engine)  # once: two processes would race to migrate
    await engine.dispose()
    receiver = WebhookReceiver().up()
    async with running_devnet_sandbox() as sb:
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG.format(
            rpc=sb.url, ws=sb.ws_url, merchant=sb.wallets.merchant.pubkey(),
            mint=sb.devnet.usdc_mint, price=PRICE, postgres_url=postgres_url,
            webhook=receiver.url))
        # Server wallets come from the environment only; ServeProcess passes it on.
        monkeypatch.setenv("X402_SERVER_WALLET_1", str(sb.wallets.server))
        servers = [ServeProcess(config, tmp_path, name) for name in ("a", "b")]
        try:
            for server in servers:  # off the loop: the sandbox answers on it
                await asyncio.to_thread(server.started)
            async with httpx.AsyncClient(timeout=60) as client:
                yield Cluster(sb, [s.url for s in servers], client), receiver
        finally:
            for server in servers:
                await asyncio.to_thread(server.stop, signal.SIGTERM)
            receiver.down()
    for server in servers:
        assert server.process.returncode == 0, log_tail(server.log)
        assert "Traceback" not in server.log.read_text(), log_tail(server.log)


async def _database_counts(dsn: str) -> tuple[list[str], int, int, int]:
    """(payment signatures, payment.succeeded rows, their distinct event ids, unsettled)."""
    conn = await asyncpg.connect(dsn)
    try:
        signatures = [r["signature"] for r in await conn.fetch(
            "SELECT signature FROM payment_transactions")]
        events, distinct = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT event_id) FROM webhook_queue "
            "WHERE event_type = 'payment.succeeded'")
        unsettled = await conn.fetchval(
            "SELECT count(*) FROM webhook_queue WHERE status IN ('pending', 'processing')")
        return signatures, events, distinct, unsettled
    finally:
        await conn.close()


async def test_each_payment_sent_many_times_at_once_to_two_processes_settles_once(
        cluster: tuple[Cluster, WebhookReceiver], postgres_dsn: str) -> None:
    world, receiver = cluster
    before = world.merchant_usdc()
    granted: list[str] = []
    refusals: Counter[tuple[int, str]] = Counter()
    for i in range(PAYMENTS):  # built just in time: each settlement lands a block
        attempts = await (world.v0_attempts() if i % 2 == 0 else world.exact_attempts())
        responses = await world.send_at_once(attempts)
        wins = [r for r in responses if r.status_code == 200]
        assert len(wins) == 1, (i, [r.text for r in responses])
        granted.append(wins[0].json()["signature"])
        refusals.update((r.status_code, r.json()["error"]["code"])
                        for r in responses if r.status_code != 200)

    assert refusals == {(402, "payment_already_used"): PAYMENTS * (COPIES - 1)}
    assert len(set(granted)) == PAYMENTS
    assert world.merchant_usdc() - before == PAYMENTS * PRICE

    await receiver.arrived(PAYMENTS, within=30)
    for _ in range(300):
        signatures, events, distinct, unsettled = await _database_counts(postgres_dsn)
        if unsettled == 0:
            break
        await asyncio.sleep(0.1)
    assert sorted(signatures) == sorted(granted)
    assert (events, distinct, unsettled) == (PAYMENTS, PAYMENTS, 0)
    deliveries = receiver.snapshot()
    assert len(deliveries) == PAYMENTS
    assert {d.json()["proofSignature"] for d in deliveries} == set(granted)
