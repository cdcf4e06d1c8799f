"""Claims before the chain, on the memory store with the real sandbox chain: a payment the
chain refuses gives its cart claim and coupon use back, and a landed payment's writes
(payment row, cart payer) land together or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.conftest import client_for
from e2e.test_x402_payments import _config, payment_header
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from cedros_pay.app import create_app
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.storage.repos import UnitOfWork
from cedros_pay.storage.store import Store, memory_store

CATALOG = """
paywall:
  product_source: yaml
  resources:
    article: {description: An article, crypto_atomic_amount: 1500000, crypto_token: USDC}
coupons:
  coupon_source: yaml
  coupons:
    ONCE:
      discount_type: percentage
      discount_value: 50
      applies_at: checkout
      usage_limit: 1
"""


class FailingCarts:
    """A unit of work's cart writes with `mark_paid` failing, as a lost connection would."""

    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        raise RuntimeError("connection lost while marking the cart paid")

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        raise AssertionError("a unit of work never releases a claim")


@dataclass
class World:
    sandbox: RunningSandbox
    client: httpx.AsyncClient
    store: Store

    def transfer(self, amount: int, payer: Keypair | None = None) -> VersionedTransaction:
        return usdc_transfer(self.sandbox.devnet, amount, payer=payer,
                             blockhash=self.sandbox.chain.latest_block.blockhash)

    def poor_payer(self) -> Keypair:
        """A funded-for-fees wallet with an empty USDC account: the chain refuses its
        transfers (preflight), so nothing lands."""
        poor = Keypair()
        self.sandbox.chain.airdrop(poor.pubkey(), 1_000_000_000)
        self.sandbox.chain.create_token_account(poor.pubkey(), self.sandbox.devnet.usdc_mint)
        return poor

    async def pay(self, tx: VersionedTransaction, resource: str, **kw: Any) -> httpx.Response:
        return await self.client.post("/paywall/v1/verify",
                                      headers={"X-PAYMENT": payment_header(tx, resource, **kw)})

    async def cart(self) -> tuple[str, int]:
        made = (await self.client.post("/paywall/v1/cart/quote", json={
            "items": [{"resource": "article", "quantity": 1}]})).json()
        return made["cartId"], int(made["quote"]["maxAmountRequired"])

    def merchant_usdc(self) -> int:
        d = self.sandbox.devnet
        return d.chain.token_balance(d.wallets.merchant.pubkey(), d.usdc_mint)

    async def coupon_uses(self, code: str) -> int:
        coupon = await self.store.coupons.get("default", code)
        assert coupon is not None
        return coupon.usage_count


@asynccontextmanager
async def running(tmp_path: Path, store: Store) -> AsyncIterator[World]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    async with running_devnet_sandbox() as sb:
        app = create_app(_config(sb, str(tmp_path / "catalog.yaml")), store=store)
        async with client_for(app) as client:
            yield World(sb, client, store)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(tmp_path, memory_store()) as w:
        yield w


async def test_a_refused_transaction_releases_its_cart_for_the_next_payment(
        world: World) -> None:
    cart_id, total = await world.cart()
    before = world.merchant_usdc()
    refused = await world.pay(world.transfer(total, payer=world.poor_payer()), cart_id,
                              resource_type="cart")
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_funds_token"
    # The claim is gone: another holder may claim the cart now.
    stored = await world.store.carts.get("default", cart_id)
    assert stored is not None and not stored.is_paid
    paid = await world.pay(world.transfer(total), cart_id, resource_type="cart")
    assert paid.status_code == 200, paid.text
    assert world.merchant_usdc() - before == total
    assert await world.store.carts.has_access("default", cart_id,
                                              str(world.sandbox.wallets.payer.pubkey()))


async def test_a_refused_transaction_gives_its_coupon_use_back(world: World) -> None:
    refused = await world.pay(world.transfer(750_000, payer=world.poor_payer()), "article",
                              metadata={"couponCode": "ONCE"})
    assert refused.json()["error"]["code"] == "insufficient_funds_token"
    assert await world.coupon_uses("ONCE") == 0
    paid = await world.pay(world.transfer(750_000), "article", metadata={"couponCode": "ONCE"})
    assert paid.status_code == 200, paid.text
    assert await world.coupon_uses("ONCE") == 1  # counted once: by the reservation
    spent = await world.pay(world.transfer(750_000), "article", metadata={"couponCode": "ONCE"})
    assert spent.json()["error"]["code"] == "amount_below_minimum"  # spent: no discount
    assert await world.coupon_uses("ONCE") == 1


async def test_a_failing_mark_paid_leaves_no_payment_row(tmp_path: Path) -> None:
    store = memory_store()
    real = store.unit_of_work

    @asynccontextmanager
    async def failing_mark_paid() -> AsyncIterator[UnitOfWork]:
        async with real() as uow:
            yield replace(uow, carts=FailingCarts())

    store.unit_of_work = failing_mark_paid
    async with running(tmp_path, store) as world:
        cart_id, total = await world.cart()
        before = world.merchant_usdc()
        tx = world.transfer(total)
        resp = await world.pay(tx, cart_id, resource_type="cart")
        assert resp.status_code == 500
        assert world.merchant_usdc() - before == total  # the money moved...
        signature = str(tx.signatures[0])
        assert not await store.payments.has_been_processed(signature)  # ...no row stayed
        stored = await store.carts.get("default", cart_id)
        assert stored is not None and not stored.is_paid
        # The landed payment keeps its claim: no second transaction may pay this cart.
        again = await world.pay(world.transfer(total), cart_id, resource_type="cart")
        assert again.json()["error"]["code"] == "cart_already_paid"
        assert world.merchant_usdc() - before == total


async def test_a_send_without_an_answer_keeps_the_cart_for_that_transaction(
        world: World) -> None:
    cart_id, total = await world.cart()
    sent, other = world.transfer(total), world.transfer(total, payer=world.poor_payer())
    world.sandbox.server.faults.fail_next(1_000, status=503)  # the node stops answering
    lost = await world.pay(sent, cart_id, resource_type="cart")
    assert lost.json()["error"]["code"] == "rpc_error", lost.text
    world.sandbox.server.faults.fail_next(0)
    # The first transaction may still land: no other may pay the cart meanwhile...
    refused = await world.pay(other, cart_id, resource_type="cart")
    assert refused.json()["error"]["code"] == "cart_already_paid"
    # ...while a resend of the same bytes passes the claim and settles.
    resent = await world.pay(sent, cart_id, resource_type="cart")
    assert resent.status_code == 200, resent.text
