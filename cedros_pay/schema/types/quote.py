"""Quotes: the Stripe option and the x402 requirement for one resource (spec 02, spec 19)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cedros_pay.resolvers.pricing import Priced
from cedros_pay.resolvers.quotes import CryptoRequirement
from cedros_pay.resolvers.quotes import Quote as QuoteResult
from cedros_pay.resolvers.quotes import StripeOption as StripeOptionResult
from cedros_pay.schema.types.money import Money
from cedros_pay.schema.types.product import Price


@strawberry.type(description="What an x402 client must pay: one `accepts` entry of a 402.")
class X402Requirement:
    scheme: str
    network: str
    amount: Money
    max_amount_required: str = strawberry.field(
        description="The amount in atomic units, as the x402 wire format has it.")
    resource: str
    description: str
    mime_type: str
    pay_to: str = strawberry.field(description="The recipient token account.")
    pay_to_owner: str = strawberry.field(description="The wallet that owns `payTo`.")
    asset: str = strawberry.field(description="The token mint.")
    token_symbol: str
    decimals: int
    max_timeout_seconds: int
    memo: str
    fee_payer: str | None = strawberry.field(
        description="The server wallet paying the network fee (gasless), if any.")

    @classmethod
    def from_domain(cls, r: CryptoRequirement) -> X402Requirement:
        return cls(
            scheme=r.scheme, network=r.network, amount=Money.from_domain(r.amount),
            max_amount_required=str(r.amount.atomic), resource=r.resource,
            description=r.description, mime_type=r.mime_type, pay_to=r.pay_to,
            pay_to_owner=r.pay_to_owner, asset=r.asset_mint, token_symbol=r.token_symbol,
            decimals=r.decimals, max_timeout_seconds=r.max_timeout_seconds, memo=r.memo,
            fee_payer=r.fee_payer,
        )


@strawberry.type(description="What a Stripe Checkout session for the resource would charge.")
class StripeOption:
    price_id: str
    amount: Money | None = strawberry.field(
        description="The card price after coupons; null when only a Stripe price id is set.")
    currency: str
    description: str
    metadata: JSON

    @classmethod
    def from_domain(cls, s: StripeOptionResult, fiat: Priced | None) -> StripeOption:
        return cls(price_id=s.price_id, amount=Money.maybe(fiat.effective if fiat else None),
                   currency=s.currency, description=s.description,
                   metadata=JSON(dict(s.metadata)))


@strawberry.type(description="Prices for one resource on both payment methods.")
class Quote:
    resource: str
    expires_at: datetime
    stripe: StripeOption | None
    x402: X402Requirement | None
    fiat_price: Price | None
    crypto_price: Price | None

    @classmethod
    def from_domain(cls, q: QuoteResult) -> Quote:
        return cls(
            resource=q.resource_id, expires_at=q.expires_at,
            stripe=StripeOption.from_domain(q.stripe, q.fiat_price) if q.stripe else None,
            x402=X402Requirement.from_domain(q.crypto) if q.crypto else None,
            fiat_price=Price.maybe(q.fiat_price), crypto_price=Price.maybe(q.crypto_price),
        )
