"""One exchange per request (resolvers/payments.py): the payment header is read once, and
a refused payment is offered again at the price its own attempt worked out, without a
second quote. Offline refusals only: the verifier points at a port nothing listens on,
and every case here is refused before anything would be sent."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import ErrorCode
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import RoundingMode
from cedros_pay.integrations.solana.verifier import SolanaVerifier
from cedros_pay.integrations.solana.wallets import WalletPool
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.events import NoopNotifier
from cedros_pay.resolvers.payments import Payments, Refused
from cedros_pay.resolvers.pricing import Priced, Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quote, Quotes
from cedros_pay.sandbox import spl
from cedros_pay.storage.store import memory_store
from cedros_pay.x402.http import settlement_header

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MERCHANT = Keypair().pubkey()
PAYER = Keypair()
USDC_DEVNET = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
ARTICLE = Product(id="article", description="An article", crypto_amount=1_000_000,
                  crypto_token="USDC", memo_template="{resource}:{nonce}")
URL = "http://shop/paywall/article"


class CountingQuotes(Quotes):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.quoted = 0

    async def quote(self, tenant: str, resource_id: str, coupon_code: str | None) -> Quote:
        self.quoted += 1
        return await super().quote(tenant, resource_id, coupon_code)


class CountingPricing(Pricing):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.priced: list[str | None] = []

    async def crypto_price(self, tenant: str, product: Product, manual_code: str | None,
                           view: Any = None) -> Priced | None:
        self.priced.append(manual_code)
        return await super().crypto_price(tenant, product, manual_code, view)


@dataclass
class World:
    payments: Payments
    quotes: CountingQuotes
    pricing: CountingPricing
    wallets: WalletPool


@pytest.fixture
async def world() -> Any:
    store = memory_store()
    await store.products.create(ARTICLE)
    await store.coupons.create(Coupon(code="HALF", discount_type="percentage",
                                      discount_value=Decimal(50)))
    clock = ManualClock(NOW)

    async def balance(_address: str) -> int:
        return 10**9

    wallets = WalletPool([Keypair()], balance)
    terms = PaymentTerms(network="devnet", payment_address=str(MERCHANT),
                         token_mint=str(USDC_DEVNET), token_symbol="USDC", token_decimals=6,
                         quote_ttl=timedelta(minutes=5), cart_ttl=timedelta(minutes=15))
    pricing = CountingPricing(store.coupons, clock, RoundingMode.STANDARD)
    snapshots = CatalogSnapshots(store.products, store.coupons, pricing, clock)
    quotes = CountingQuotes(store.products, pricing, terms, snapshots)
    verifier = SolanaVerifier("http://127.0.0.1:9", network="devnet", use_websocket=False)
    payments = Payments(quotes=quotes, pricing=pricing, carts=store.carts,
                        payments=store.payments, coupons=store.coupons,
                        unit_of_work=store.unit_of_work, verifier=verifier,
                        notifier=NoopNotifier(), clock=clock, fee_payers=wallets)
    yield World(payments, quotes, pricing, wallets)
    await verifier.aclose()


def v0_header(amount: int, **metadata: str) -> str:
    ix = spl.transfer_checked(
        spl.associated_token_address(PAYER.pubkey(), USDC_DEVNET), USDC_DEVNET,
        spl.associated_token_address(MERCHANT, USDC_DEVNET), PAYER.pubkey(), amount, 6)
    tx = VersionedTransaction(MessageV0.try_compile(PAYER.pubkey(), [ix], [], Hash.default()),
                              [PAYER])
    doc = {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
           "payload": {"transaction": base64.b64encode(bytes(tx)).decode(),
                       "resource": "article", "metadata": metadata}}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def unb64(value: str) -> Any:
    return json.loads(base64.b64decode(value))


async def test_a_refused_payment_is_offered_again_at_the_price_it_was_refused_at(
        world: World) -> None:
    outcome = await world.payments.exchange(
        "default", x_payment=v0_header(1), payment_signature=None, resource_id=None,
        coupon_code=None, url=URL)
    assert isinstance(outcome, Refused)
    assert outcome.error.code is ErrorCode.AMOUNT_BELOW_MINIMUM
    assert world.quotes.quoted == 0 and world.pricing.priced == [None]  # priced once
    assert outcome.offer is not None and outcome.offer.error == outcome.error.message
    [offer] = outcome.offer.accepts
    assert (offer.amount_atomic, offer.pay_to, offer.url) == (1_000_000, str(MERCHANT), URL)
    assert world.wallets.holds(offer.fee_payer)
    name, value = settlement_header(outcome.response)
    assert name == "X-PAYMENT-RESPONSE"
    assert unb64(value) == {"success": False, "txHash": None, "networkId": None,
                            "error": outcome.error.message}


async def test_the_refusal_offer_keeps_the_coupon_the_payment_was_priced_with(
        world: World) -> None:
    outcome = await world.payments.exchange(
        "default", x_payment=v0_header(1, couponCode="HALF"), payment_signature=None,
        resource_id="article", coupon_code=None, url=URL)
    assert isinstance(outcome, Refused) and outcome.offer is not None
    assert outcome.offer.accepts[0].amount_atomic == 500_000
    assert world.pricing.priced == ["HALF"]


async def test_a_header_refused_before_pricing_is_priced_once_for_its_offer(
        world: World) -> None:
    outcome = await world.payments.exchange(
        "default", x_payment="not a header", payment_signature=None, resource_id="article",
        coupon_code="HALF", url=URL)
    assert isinstance(outcome, Refused)
    assert outcome.error.code is ErrorCode.INVALID_PAYMENT_PROOF
    assert outcome.response.version == 0
    assert world.quotes.quoted == 0 and world.pricing.priced == ["HALF"]
    assert outcome.offer is not None and outcome.offer.accepts[0].amount_atomic == 500_000


async def test_payment_signature_answers_in_v2_even_when_it_carries_another_version(
        world: World) -> None:
    outcome = await world.payments.exchange(
        "default", x_payment=None, payment_signature=v0_header(1_000_000),
        resource_id="article", coupon_code=None, url=URL)
    assert isinstance(outcome, Refused)
    assert outcome.error.details is not None
    assert outcome.error.details["reason"] == "unsupported_version"
    name, value = settlement_header(outcome.response)
    assert name == "PAYMENT-RESPONSE"
    assert unb64(value)["errorReason"] == "invalid_payment_proof"
    assert unb64(value)["network"] == "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"


async def test_no_offer_for_a_refusal_that_is_not_a_402_or_names_no_resource(
        world: World) -> None:
    gone = await world.payments.exchange(
        "default", x_payment=v0_header(1), payment_signature=None, resource_id="missing",
        coupon_code=None, url=URL)
    assert isinstance(gone, Refused) and gone.error.code is ErrorCode.INVALID_RESOURCE
    assert gone.offer is None
    anonymous = await world.payments.exchange(
        "default", x_payment="not a header", payment_signature=None, resource_id=None,
        coupon_code=None, url=URL)
    assert isinstance(anonymous, Refused) and anonymous.offer is None
    assert world.pricing.priced == []
