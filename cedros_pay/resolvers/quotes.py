"""Single-resource quotes: the Stripe option and the x402 requirement (spec 19, spec 02).

A quote is computed, not stored: the price is recomputed from the catalog and the coupon
the client quoted with when the payment is verified (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from cedros_pay.core.assets import find_asset
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import MEMO_NONCE_LENGTH, new_memo_nonce
from cedros_pay.core.models import Product
from cedros_pay.core.money import Money, display
from cedros_pay.integrations.solana.accounts import associated_token_address
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshots
from cedros_pay.resolvers.pricing import Priced, Pricing, coupon_metadata
from cedros_pay.storage.repos import ProductRepo
from cedros_pay.x402.memo import interpolate_memo, nonce_slots

SCHEME = "solana-spl-transfer"
MIME_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    """The merchant-wide x402 settings a quote needs (a slice of the config)."""

    network: str
    payment_address: str
    token_mint: str
    token_symbol: str
    token_decimals: int
    quote_ttl: timedelta
    cart_ttl: timedelta
    memo_prefix: str = "cedros"
    fee_payer: Callable[[], str | None] | None = None  # gasless: the next healthy wallet


@dataclass(frozen=True, slots=True)
class StripeOption:
    price_id: str
    amount_cents: int
    currency: str
    description: str
    metadata: dict[str, str] = field(default_factory=dict)


class CryptoRequirement(NamedTuple):
    """One `accepts` entry of an x402 v0 402 body."""

    network: str
    amount: Money
    resource: str
    description: str
    pay_to: str  # the recipient token account
    pay_to_owner: str  # the wallet owning it (x402 v1/v2 `payTo`)
    asset_mint: str
    token_symbol: str
    decimals: int
    max_timeout_seconds: int
    memo: str
    fee_payer: str | None = None
    scheme: str = SCHEME
    mime_type: str = MIME_TYPE


class Quote(NamedTuple):
    """A priced offer for one resource."""

    resource_id: str
    expires_at: datetime
    stripe: StripeOption | None
    crypto: CryptoRequirement | None
    fiat_price: Priced | None
    crypto_price: Priced | None


@dataclass(frozen=True, slots=True)
class _Offer:
    """What every quote of one product with one coupon code shares while the catalog
    snapshot holds: the prices, the Stripe option, the x402 requirement without its memo
    and fee payer, and the memo around its nonce. Kept by the snapshot (`offer`)."""

    fiat: Priced | None
    crypto: Priced | None
    stripe: StripeOption | None
    requirement: CryptoRequirement | None  # with an empty memo and no fee payer
    amount: str  # the memo's {amount}
    memo_slots: tuple[str, ...] | None  # the memo around its nonce (None: interpolate)


class Quotes:
    def __init__(self, products: ProductRepo, pricing: Pricing, terms: PaymentTerms,
                 snapshots: CatalogSnapshots) -> None:
        self._products = products
        self._pricing = pricing
        self.terms = terms
        self._snapshots = snapshots

    async def product(self, tenant: str, resource_id: str) -> Product:
        """An active product, or `resource_not_found` (spec 19 step 1)."""
        if not resource_id:
            raise CedrosError(ErrorCode.MISSING_FIELD, "resource is required",
                              {"field": "resource"})
        product = await self._products.get(tenant, resource_id)
        if product is None or not product.active:
            raise CedrosError(ErrorCode.RESOURCE_NOT_FOUND,
                              f"resource {resource_id!r} is not configured",
                              {"resource": resource_id})
        return product

    async def quote(self, tenant: str, resource_id: str, coupon_code: str | None) -> Quote:
        """Price one resource for both rails; an unusable coupon is ignored (spec 19)."""
        product = await self.product(tenant, resource_id)
        manual = await self._pricing.manual(tenant, coupon_code)
        snapshot, now = await self._snapshots.for_product(tenant, product)
        offer = snapshot.offer(product, coupon_code or "", manual, now, self._offer)
        requirement = offer.requirement
        if requirement is not None:
            nonce = new_memo_nonce()
            if offer.memo_slots is not None:
                memo = nonce.join(offer.memo_slots)
            else:
                memo = interpolate_memo(product.memo_template, {
                    "resource": product.id, "nonce": nonce, "amount": offer.amount})
            requirement = requirement._replace(memo=memo, fee_payer=self._fee_payer())
        return Quote(resource_id=product.id, expires_at=now + self.terms.quote_ttl,
                     stripe=offer.stripe, crypto=requirement, fiat_price=offer.fiat,
                     crypto_price=offer.crypto)

    def _fee_payer(self) -> str | None:
        return self.terms.fee_payer() if self.terms.fee_payer else None

    def _offer(self, product: Product, fiat: Priced | None, crypto: Priced | None) -> _Offer:
        if fiat is None and crypto is None and not product.stripe_price_id:
            raise CedrosError(ErrorCode.RESOURCE_NOT_FOUND,
                              f"resource {product.id!r} has no price", {"resource": product.id})
        stripe = None
        if fiat is not None or product.stripe_price_id:
            stripe = StripeOption(
                price_id=product.stripe_price_id,
                amount_cents=fiat.effective.atomic if fiat else 0,
                currency=product.fiat_currency or "usd",
                description=product.description,
                metadata=coupon_metadata(fiat) if fiat else {},
            )
        requirement = None
        amount = ""
        if crypto is not None:
            amount = display(crypto.effective).split(" ")[0]
            requirement = self._requirement(
                resource=product.id, amount=crypto.effective, description=product.description,
                recipient_account=product.crypto_account, memo="", ttl=self.terms.quote_ttl,
                fee_payer=None)
        slots = nonce_slots(product.memo_template, {"resource": product.id, "amount": amount},
                            MEMO_NONCE_LENGTH)
        return _Offer(fiat=fiat, crypto=crypto, stripe=stripe, requirement=requirement,
                      amount=amount, memo_slots=slots)

    def requirement(self, *, resource: str, amount: Money, description: str,
                    recipient_account: str, memo: str, ttl: timedelta) -> CryptoRequirement:
        """The x402 requirement for an amount; carts use it too."""
        return self._requirement(resource=resource, amount=amount, description=description,
                                 recipient_account=recipient_account, memo=memo, ttl=ttl,
                                 fee_payer=self._fee_payer())

    def _requirement(self, *, resource: str, amount: Money, description: str,
                     recipient_account: str, memo: str, ttl: timedelta,
                     fee_payer: str | None) -> CryptoRequirement:
        t = self.terms
        mint, decimals = self.mint_for(amount)
        pay_to = recipient_account or associated_token_address(t.payment_address, mint)
        return CryptoRequirement(
            network=t.network, amount=amount, resource=resource, description=description,
            pay_to=pay_to, pay_to_owner=t.payment_address, asset_mint=mint,
            token_symbol=amount.asset.code, decimals=decimals,
            max_timeout_seconds=int(ttl.total_seconds()), memo=memo, fee_payer=fee_payer,
        )

    def mint_for(self, amount: Money) -> tuple[str, int]:
        """The mint (and its decimals) an amount is paid in on this network."""
        t = self.terms
        if amount.asset.code == t.token_symbol:
            return t.token_mint, t.token_decimals
        asset = find_asset(amount.asset.code)
        mints = asset.mints(t.network) if asset else ()
        if not mints:
            raise CedrosError(ErrorCode.CONFIG_ERROR,
                              f"no {amount.asset.code} mint on {t.network}")
        return mints[-1], amount.asset.decimals
