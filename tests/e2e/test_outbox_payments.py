"""x402 payments and their merchant webhook in one transaction (issue 12), through the real
flow: the sandbox chain, the app over HTTP, the delivery worker, a receiver on 127.0.0.1,
on memory, SQLite and PostgreSQL. A unit of work that fails after the transaction landed
leaves no payment row, no paid cart, no counted coupon and no queued event; the payer's
retry of the same transaction is then accepted, and each payment reaches the merchant
exactly once however often it is replayed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from api.conftest import client_for
from e2e import test_payment_claims as claims
from e2e.test_x402_payments import _config
from support.faulty_units import Faults, inject
from support.webhook_receiver import WebhookReceiver

from cedros_pay.app import create_app
from cedros_pay.core.models import Coupon
from cedros_pay.sandbox.testing import running_devnet_sandbox
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import Store, memory_store

# Coupons live in the store's own table on every backend: the seeded YAML one on memory,
# the database source on SQL, so `store.coupons` shows the count the payment reserved.
CATALOG = """
paywall:
  product_source: yaml
  resources:
    article: {description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}
callbacks:
  payment_success_url: "URL"
  timeout: 2s
  poll_interval: 1s
"""
YAML_COUPON = """
coupons:
  coupon_source: yaml
  coupons:
    ONCE: {discount_type: percentage, discount_value: 50, applies_at: checkout, usage_limit: 1}
"""
ONCE = Coupon(code="ONCE", discount_type="percentage", discount_value=Decimal(50),
              applies_at="checkout", usage_limit=1)


@dataclass
class World(claims.World):
    faults: Faults
    receiver: WebhookReceiver

    async def uses(self) -> int:
        return await self.coupon_uses("ONCE")

    async def queued(self) -> list[str]:
        """The proof signature of every queued (or delivered) webhook."""
        items = await self.store.webhooks.list("default")
        return sorted(item.payload.split('"proofSignature":"')[1].split('"')[0]
                      for item in items)

    async def delivered(self, count: int) -> list[str]:
        """Wait for `count` deliveries, then make sure no further one follows."""
        await self.receiver.arrived(count, within=10)
        await asyncio.sleep(0.3)  # a woken worker delivers in milliseconds
        return sorted(d.json()["proofSignature"] for d in self.receiver.snapshot())


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                receiver: WebhookReceiver) -> AsyncIterator[World]:
    kind: str = request.param
    yaml = CATALOG.replace("URL", receiver.url)
    env: dict[str, str] = {}
    if kind == "memory":
        store = memory_store()
        yaml += YAML_COUPON
    else:
        if kind == "sqlite":
            where = str(tmp_path / "outbox.db")
            store = await open_store("sqlite", file_path=where)
            yaml += f"storage: {{backend: sqlite, file_path: '{where}'}}\n"
        else:
            url = request.getfixturevalue("postgres_url")
            store = await open_store("postgres", postgres_url=url)
            yaml += f"storage: {{backend: postgres, postgres_url: '{url}'}}\n"
        env["COUPON_SOURCE"] = kind
        await store.coupons.create(ONCE)
    (tmp_path / "catalog.yaml").write_text(yaml)
    faults = inject(store)
    async with running(store, faults, receiver, str(tmp_path / "catalog.yaml"), env) as w:
        yield w
    await store.close()


@asynccontextmanager
async def running(store: Store, faults: Faults, receiver: WebhookReceiver, yaml_path: str,
                  env: dict[str, str]) -> AsyncIterator[World]:
    async with running_devnet_sandbox() as sb:
        app = create_app(_config(sb, yaml_path, **env), store=store)
        async with client_for(app) as client:
            yield World(sb, client, store, faults, receiver)


async def test_a_failing_enqueue_undoes_the_payment_and_the_retry_is_accepted(
        world: World) -> None:
    before = world.merchant_usdc()
    single = world.transfer(750_000)
    cart_id, total = await world.cart()
    paid_cart = world.transfer(total)

    world.faults.enqueue = 2
    for resp in (await world.pay(single, "article", metadata={"couponCode": "ONCE"}),
                 await world.pay(paid_cart, cart_id, resource_type="cart")):
        assert resp.status_code == 500, resp.text
    assert world.merchant_usdc() - before == 750_000 + total  # the money moved...
    signatures = sorted(str(t.signatures[0]) for t in (single, paid_cart))
    for signature in signatures:  # ...and nothing of either payment stayed
        assert not await world.store.payments.has_been_processed(signature)
    stored = await world.store.carts.get("default", cart_id)
    assert stored is not None and not stored.is_paid
    assert await world.uses() == 0
    assert await world.queued() == []

    # The payer retries the same transactions: accepted (the chain has them already),
    # the coupon's only use is taken again, and each payment is queued once.
    retried = await world.pay(single, "article", metadata={"couponCode": "ONCE"})
    assert retried.status_code == 200, retried.text
    retried_cart = await world.pay(paid_cart, cart_id, resource_type="cart")
    assert retried_cart.status_code == 200, retried_cart.text
    assert world.merchant_usdc() - before == 750_000 + total  # nothing paid twice
    assert await world.uses() == 1
    assert await world.store.carts.has_access("default", cart_id,
                                              str(world.sandbox.wallets.payer.pubkey()))
    for _ in range(2):  # replays change nothing
        again = await world.pay(single, "article", metadata={"couponCode": "ONCE"})
        assert again.json()["error"]["code"] == "payment_already_used"
    assert await world.queued() == signatures
    assert await world.delivered(2) == signatures


async def test_a_failing_payment_insert_queues_no_event(world: World) -> None:
    tx = world.transfer(1_500_000)
    world.faults.record = 1
    failed = await world.pay(tx, "article")
    assert failed.status_code == 500, failed.text
    assert await world.queued() == []
    assert not await world.store.payments.has_been_processed(str(tx.signatures[0]))
    accepted = await world.pay(tx, "article")
    assert accepted.status_code == 200, accepted.text
    assert await world.queued() == [str(tx.signatures[0])]
    assert await world.delivered(1) == [str(tx.signatures[0])]
