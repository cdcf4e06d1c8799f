"""Quotes reuse a product's fixed parts, but each quote still gets its own memo nonce,
expiry and fee payer, and any change to the product or its prices shows at once."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import RoundingMode
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import PaymentTerms, Quotes
from cedros_pay.storage.store import Store, memory_store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MERCHANT = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"
USDC_DEVNET = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
ARTICLE = Product(id="article", description="An article", fiat_amount=100,
                  fiat_currency="usd", crypto_amount=1_000_000, crypto_token="USDC",
                  memo_template="{resource}:{nonce}:{amount}")


async def quotes(fee_payers: list[str] | None = None) -> tuple[Quotes, Store, ManualClock]:
    store = memory_store()
    await store.products.create(ARTICLE)
    await store.coupons.create(Coupon(code="HALF", discount_type="percentage",
                                      discount_value=Decimal(50)))
    clock = ManualClock(NOW)
    cycle = itertools.cycle(fee_payers) if fee_payers else None
    terms = PaymentTerms(network="devnet", payment_address=MERCHANT, token_mint=USDC_DEVNET,
                         token_symbol="USDC", token_decimals=6,
                         quote_ttl=timedelta(minutes=5), cart_ttl=timedelta(minutes=15),
                         fee_payer=(lambda: next(cycle)) if cycle else None)
    pricing = Pricing(store.coupons, clock, RoundingMode.STANDARD)
    snapshots = CatalogSnapshots(store.products, store.coupons, pricing, clock)
    return Quotes(store.products, pricing, terms, snapshots), store, clock


async def test_each_quote_has_its_own_nonce_and_expiry() -> None:
    q, _, clock = await quotes()
    first = await q.quote("default", "article", None)
    clock.advance(timedelta(seconds=30))
    second = await q.quote("default", "article", None)
    assert first.crypto is not None and second.crypto is not None
    assert first.crypto.memo != second.crypto.memo
    for quote in (first, second):
        resource, nonce, amount = quote.crypto.memo.split(":")  # type: ignore[union-attr]
        assert (resource, len(nonce), amount) == ("article", 8, "1.00")
    assert second.expires_at - first.expires_at == timedelta(seconds=30)
    assert first.crypto.amount == second.crypto.amount
    assert first.stripe is not None and first.stripe.amount_cents == 100


async def test_each_quote_asks_for_the_fee_payer_of_the_moment() -> None:
    q, _, _ = await quotes(fee_payers=["WalletA", "WalletB"])
    payers = [(await q.quote("default", "article", None)).crypto.fee_payer  # type: ignore[union-attr]
              for _ in range(3)]
    assert payers == ["WalletA", "WalletB", "WalletA"]


async def test_an_edited_product_is_quoted_as_edited() -> None:
    q, store, _ = await quotes()
    await q.quote("default", "article", None)
    await store.products.update(replace(ARTICLE, description="Now longer",
                                        crypto_amount=2_500_000, fiat_amount=250))
    quote = await q.quote("default", "article", None)
    assert quote.crypto is not None and quote.stripe is not None
    assert (quote.crypto.amount.atomic, quote.crypto.description) == (2_500_000, "Now longer")
    assert quote.crypto.memo.endswith(":2.50")
    assert quote.stripe.amount_cents == 250


async def test_codes_alternating_keep_their_own_prices() -> None:
    q, _, _ = await quotes()
    for code, atomic, cents in [("HALF", 500_000, 50), (None, 1_000_000, 100),
                                ("HALF", 500_000, 50), ("nope", 1_000_000, 100)]:
        quote = await q.quote("default", "article", code)
        assert quote.crypto is not None and quote.stripe is not None
        assert (quote.crypto.amount.atomic, quote.stripe.amount_cents) == (atomic, cents)
        metadata = quote.stripe.metadata
        assert (metadata.get("coupon_codes") == "HALF") == (code == "HALF")
