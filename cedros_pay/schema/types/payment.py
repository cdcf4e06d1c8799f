"""Recorded payments, their per-asset totals, and live payment events (DESIGN §6 payments)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.assets import find_asset, get_asset
from cedros_pay.core.models import STRIPE_SIGNATURE_PREFIX, PaymentTransaction
from cedros_pay.core.models import AssetTotal as AssetTotalModel
from cedros_pay.core.money import Money as CoreMoney
from cedros_pay.resolvers.events import PaymentEvent as PaymentEventModel
from cedros_pay.schema.pagination import Edge, PageInfo
from cedros_pay.schema.types.enums import PaymentMethod
from cedros_pay.schema.types.money import Money


def method_of(signature: str) -> PaymentMethod:
    """Card payments are recorded under `stripe:{session_id}` (core/models.py), so the
    signature alone says which rail paid; the storage filters use the same test."""
    if signature.startswith(STRIPE_SIGNATURE_PREFIX):
        return PaymentMethod.STRIPE
    return PaymentMethod.X402


@strawberry.type(description="A settled payment as the ledger recorded it.")
class Payment:
    signature: str = strawberry.field(
        description="The Solana transaction signature, or `stripe:<sessionId>` for cards.")
    resource: str = strawberry.field(description="The product id or cart id paid for.")
    wallet: str = strawberry.field(description="The payer's wallet (empty for cards).")
    amount: Money
    paid_at: datetime
    metadata: JSON
    method: PaymentMethod
    stripe_session_id: str | None = strawberry.field(
        description="The Checkout session a card payment was made in (null for x402).")

    @classmethod
    def from_domain(cls, tx: PaymentTransaction) -> Payment:
        # get_asset: the ledger only ever holds registered assets; anything else is a
        # corrupted row and deserves its error rather than a guessed decimals count.
        amount = CoreMoney(get_asset(tx.asset), tx.amount_atomic)
        return cls(signature=tx.signature, resource=tx.resource_id, wallet=tx.wallet,
                   amount=Money.from_domain(amount), paid_at=tx.created_at,
                   metadata=JSON(dict(tx.metadata)), method=method_of(tx.signature),
                   stripe_session_id=tx.signature.removeprefix(STRIPE_SIGNATURE_PREFIX)
                   if tx.signature.startswith(STRIPE_SIGNATURE_PREFIX) else None)


@strawberry.type(description="How many payments one asset received, and their sum.")
class AssetTotal:
    asset: str
    count: int
    amount: Money

    @classmethod
    def from_domain(cls, total: AssetTotalModel) -> AssetTotal:
        money = CoreMoney(get_asset(total.asset), total.amount_atomic)
        return cls(asset=money.asset.code, count=total.count, amount=Money.from_domain(money))


class TotalsOnce:
    """The aggregate query behind `totals` and `totalCount`, run at most once per
    connection and only when one of them is selected: a dashboard paging through rows
    should not pay for a full-ledger sum on every page."""

    def __init__(self, load: Callable[[], Awaitable[list[AssetTotalModel]]]) -> None:
        self._load = load
        self._task: asyncio.Future[list[AssetTotalModel]] | None = None

    async def get(self) -> list[AssetTotalModel]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())
        return await self._task


async def connection_totals(root: strawberry.Parent[PaymentConnection]) -> list[AssetTotal]:
    return [AssetTotal.from_domain(t) for t in await root.totals_source.get()]


async def connection_total_count(root: strawberry.Parent[PaymentConnection]) -> int:
    return sum(t.count for t in await root.totals_source.get())


@strawberry.type(description="A page of payments, newest first, with totals for the filter.")
class PaymentConnection:
    edges: list[Edge[Payment]]
    page_info: PageInfo
    totals_source: strawberry.Private[TotalsOnce]

    totals: list[AssetTotal] = strawberry.field(
        resolver=connection_totals,
        description="Per asset, every payment the filter matches (all pages).")
    total_count: int = strawberry.field(
        resolver=connection_total_count, description="Payments the filter matches, all pages.")


def _event_amount(event: PaymentEventModel) -> Money | None:
    if event.method == "stripe":
        code, atomic = event.fiat_currency, event.fiat_amount_cents
    else:
        code, atomic = event.crypto_token, event.crypto_atomic_amount
    # find_asset: one odd event must not end a dashboard's whole subscription.
    asset = find_asset(code) if code else None
    return Money.from_domain(CoreMoney(asset, atomic)) if asset is not None else None


@strawberry.type(description="A payment that has just settled (what webhooks also report).")
class PaymentEvent:
    event_id: str
    event_type: str = strawberry.field(description="Always `payment.succeeded` for now.")
    resource: str
    method: PaymentMethod
    wallet: str | None = strawberry.field(description="The payer's wallet (x402 only).")
    signature: str | None = strawberry.field(
        description="As `Payment.signature`: usable with the `payment` query.")
    amount: Money | None
    paid_at: datetime
    metadata: JSON

    @classmethod
    def from_domain(cls, event: PaymentEventModel) -> PaymentEvent:
        if event.method == "stripe":
            session = event.stripe_session_id
            signature = f"{STRIPE_SIGNATURE_PREFIX}{session}" if session else None
            method = PaymentMethod.STRIPE
        else:
            signature = event.proof_signature or None
            method = PaymentMethod.X402
        return cls(event_id=event.event_id, event_type=event.event_type,
                   resource=event.resource_id, method=method, wallet=event.wallet or None,
                   signature=signature, amount=_event_amount(event), paid_at=event.paid_at,
                   metadata=JSON(dict(event.metadata)))
