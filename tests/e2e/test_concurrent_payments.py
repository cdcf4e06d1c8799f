"""Claims before the chain across two real `cedros-pay serve` processes on one PostgreSQL
database and the sandbox chain: of two *different* transactions racing for one cart, or
for a coupon's last use, one settles and the other is refused before it is sent, so the
payer's balance moves exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from e2e.test_replay_across_servers import two_servers
from e2e.test_x402_payments import payment_header
from solders.transaction import VersionedTransaction

from cedros_pay.core.models import Coupon
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.open import open_store
from cedros_pay.storage.sql.engine import create_postgres_engine
from cedros_pay.storage.sql.migrate import upgrade

pytestmark = pytest.mark.postgres

CONFIG = """
paywall:
  product_source: yaml
  resources:
    article: {{description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}}
coupons: {{coupon_source: postgres, cache_ttl: 10m}}
storage: {{backend: postgres, postgres_url: "{url}"}}
logging: {{level: warn}}
"""


@dataclass
class Cluster:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    urls: list[str]
    postgres_url: str

    def transfer(self, amount: int, memo: str) -> VersionedTransaction:
        """A transfer from the demo payer; `memo` makes each one a different transaction."""
        return usdc_transfer(self.sandbox.devnet, amount, memo=memo,
                             blockhash=self.sandbox.chain.latest_block.blockhash)

    def payer_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.payer.pubkey(), d.usdc_mint)

    def landed(self, tx: VersionedTransaction) -> bool:
        return self.sandbox.chain.transaction(tx.signatures[0]) is not None

    async def pay_at_once(self, *attempts: tuple[str, str]) -> list[httpx.Response]:
        """POST /paywall/v1/verify with each (server url, X-PAYMENT) at the same moment."""
        return list(await asyncio.gather(*(
            self.client.post(url + "/paywall/v1/verify", headers={"X-PAYMENT": header})
            for url, header in attempts)))


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    engine = create_postgres_engine(postgres_url)
    await upgrade(engine)
    await engine.dispose()
    store = await open_store("postgres", postgres_url=postgres_url)
    try:
        await store.coupons.create(Coupon(
            code="ONCE", discount_type="percentage", discount_value=Decimal(50),
            applies_at="checkout", usage_limit=1))
    finally:
        await store.close()
    async with running_devnet_sandbox() as sb:
        cfg = tmp_path / "cedros.yaml"
        cfg.write_text(CONFIG.format(url=postgres_url))
        async with httpx.AsyncClient(timeout=60) as client, \
                two_servers(cfg, sb, client) as urls:
            yield Cluster(sb, client, urls, postgres_url)


def _split(responses: list[httpx.Response], code: str) -> tuple[int, int]:
    """The index of the one success and of the one refusal with `code`."""
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, [r.text for r in responses]
    winner = statuses.index(200)
    loser = 1 - winner
    assert responses[loser].json()["error"]["code"] == code, responses[loser].text
    return winner, loser


async def test_two_transactions_for_one_cart_settle_once(cluster: Cluster) -> None:
    a, b = cluster.urls
    made = await cluster.client.post(a + "/paywall/v1/cart/quote", json={
        "items": [{"resource": "article", "quantity": 1}]})
    cart_id, total = made.json()["cartId"], int(made.json()["quote"]["maxAmountRequired"])
    txs = [cluster.transfer(total, "first"), cluster.transfer(total, "second")]
    assert txs[0].signatures[0] != txs[1].signatures[0]
    before = cluster.payer_usdc()
    responses = await cluster.pay_at_once(
        *((url, payment_header(tx, cart_id, resource_type="cart"))
          for url, tx in zip((a, b), txs, strict=True)))
    winner, loser = _split(responses, "cart_already_paid")
    assert before - cluster.payer_usdc() == total  # the payer paid once
    assert cluster.landed(txs[winner]) and not cluster.landed(txs[loser])
    assert responses[winner].json()["resource"] == cart_id
    # The same race inside one process: a fresh cart, both transactions to server B.
    made = await cluster.client.post(b + "/paywall/v1/cart/quote", json={
        "items": [{"resource": "article", "quantity": 1}]})
    cart_id = made.json()["cartId"]
    txs = [cluster.transfer(total, "third"), cluster.transfer(total, "fourth")]
    before = cluster.payer_usdc()
    responses = await cluster.pay_at_once(
        *((b, payment_header(tx, cart_id, resource_type="cart")) for tx in txs))
    winner, loser = _split(responses, "cart_already_paid")
    assert before - cluster.payer_usdc() == total
    assert cluster.landed(txs[winner]) and not cluster.landed(txs[loser])


async def test_a_one_use_coupon_paid_twice_at_once_is_used_once(cluster: Cluster) -> None:
    urls = cluster.urls
    for url in urls:  # each process has priced the coupon (and caches it) before the race
        quote = await cluster.client.post(url + "/paywall/v1/quote",
                                          json={"resource": "article", "couponCode": "ONCE"})
        assert int(quote.json()["accepts"][0]["maxAmountRequired"]) == 750_000
    txs = [cluster.transfer(750_000, "left"), cluster.transfer(750_000, "right")]
    before = cluster.payer_usdc()
    responses = await cluster.pay_at_once(
        *((url, payment_header(tx, "article", metadata={"couponCode": "ONCE"}))
          for url, tx in zip(urls, txs, strict=True)))
    winner, loser = _split(responses, "coupon_usage_limit_reached")
    assert responses[winner].json()["amount"] == "750000"  # the discount, once
    assert before - cluster.payer_usdc() == 750_000
    assert cluster.landed(txs[winner]) and not cluster.landed(txs[loser])
    store = await open_store("postgres", postgres_url=cluster.postgres_url)
    try:
        coupon = await store.coupons.get("default", "ONCE")
        assert coupon is not None and coupon.usage_count == 1 == coupon.usage_limit
        assert not await store.payments.has_been_processed(str(txs[loser].signatures[0]))
    finally:
        await store.close()
