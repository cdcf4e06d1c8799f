"""x402 payments: turn an X-PAYMENT header into access, exactly once (specs 07, 13, 19).

The order matters for money:
1. the required amount is recomputed from the catalog (single) or read from the stored
   cart (frozen prices), never taken from the client;
2. every offline check runs before anything is sent to the chain;
3. the signature is recorded with one atomic insert *after* confirmation: of any number of
   racing requests (or server processes) carrying the same transaction, exactly one wins;
   a failed or dropped transaction leaves nothing behind, so the client may retry it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cedros_pay.core.assets import get_asset
from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_event_id
from cedros_pay.core.memo import memo_matcher
from cedros_pay.core.models import AssetTotal, CartQuote, PaymentFilter, PaymentTransaction
from cedros_pay.core.money import Money
from cedros_pay.integrations.solana.accounts import associated_token_address
from cedros_pay.integrations.solana.payload import (
    PaymentPayload,
    ResourceType,
    parse_payment_header,
)
from cedros_pay.integrations.solana.transaction import decode_transaction
from cedros_pay.integrations.solana.verifier import Requirement, VerificationResult
from cedros_pay.resolvers.events import Notifier, PaymentEvent
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.storage.repos import CartQuoteRepo, CouponRepo, PaymentRepo

log = logging.getLogger("cedros_pay.payments")

ACCESS_TTL = timedelta(minutes=45)  # spec 07 DefaultAccessTTL
MAX_PAGE = 100
COUPON_KEYS = ("couponCode", "coupon_code")  # DESIGN §7: the Cedros React client's keys


class PaymentVerifier(Protocol):
    async def verify(self, payload: PaymentPayload,
                     requirement: Requirement) -> VerificationResult: ...


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a settled payment buys: `resource` for `wallet` until `expires_at`."""

    resource_id: str
    resource_type: str  # "regular" | "cart"
    wallet: str
    signature: str
    amount: Money
    network: str
    paid_at: datetime
    expires_at: datetime


class Payments:
    def __init__(self, *, quotes: Quotes, pricing: Pricing, carts: CartQuoteRepo,
                 payments: PaymentRepo, coupons: CouponRepo, verifier: PaymentVerifier,
                 notifier: Notifier, clock: Clock, access_ttl: timedelta = ACCESS_TTL) -> None:
        self._quotes = quotes
        self._pricing = pricing
        self._carts = carts
        self._payments = payments
        self._coupons = coupons
        self._verifier = verifier
        self._notifier = notifier
        self._clock = clock
        self._access_ttl = access_ttl

    async def authorize(self, tenant: str, header: str | None,
                        resource_id: str | None = None) -> AccessGrant:
        """Verify and settle an X-PAYMENT header; `resource_id`, when given, is the
        resource the request is for (the payload must name the same one)."""
        if not header:
            raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF, "X-PAYMENT header is required")
        payload = parse_payment_header(header)
        terms = self._quotes.terms
        if payload.network != terms.network:
            raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                              f"payment is for network {payload.network!r}, "
                              f"this server accepts {terms.network!r}",
                              {"network": payload.network})
        target = payload.payload.resource or resource_id or ""
        if resource_id and target != resource_id and target != f"cart:{resource_id}":
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"payment is for {target!r}, not {resource_id!r}")
        kind = payload.payload.resource_type
        if kind is ResourceType.REFUND:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "refund payments are not supported by this server yet")
        if kind is ResourceType.CART or target.startswith(("cart:", "cart_")):
            return await self._pay_cart(tenant, payload, target.removeprefix("cart:"))
        return await self._pay_resource(tenant, payload, target)

    async def _refuse_replay(self, payload: PaymentPayload) -> None:
        """Fast path only: the atomic insert after settlement is what guarantees it."""
        signature = payload.payload.signature
        if not signature:
            tx = decode_transaction(payload.payload.transaction)
            signature = str(tx.signatures[0]) if tx.signatures else ""
        if signature and await self._payments.has_been_processed(signature):
            raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED, details={"signature": signature})

    def _requirement(self, amount: Money, *, exact: bool, recipient_account: str,
                     memo: str | re.Pattern[str] | None) -> Requirement:
        """What the transaction must do: the same recipient and mint the quote named."""
        terms = self._quotes.terms
        mint, decimals = self._quotes.mint_for(amount)
        return Requirement(
            network=terms.network, mints=(mint,), decimals=decimals,
            amount_atomic=amount.atomic, recipient_owner=terms.payment_address,
            recipient_token_account=recipient_account
            or associated_token_address(terms.payment_address, mint),
            exact=exact, memo=memo,
        )

    async def _pay_resource(self, tenant: str, payload: PaymentPayload,
                            resource_id: str) -> AccessGrant:
        product = await self._quotes.product(tenant, resource_id)
        metadata = payload.payload.metadata
        coupon = next((metadata[k] for k in COUPON_KEYS if metadata.get(k)), None)
        priced = await self._pricing.crypto_price(tenant, product, coupon)
        if priced is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {product.id!r} cannot be paid with x402")
        # The memo must have the shape the quote's template gives (its nonce varies).
        memo = memo_matcher(product.memo_template, {"resource": product.id}) \
            if product.memo_template else None
        requirement = self._requirement(priced.effective, exact=False,
                                        recipient_account=product.crypto_account, memo=memo)
        await self._refuse_replay(payload)
        result = await self._verifier.verify(payload, requirement)
        grant = await self._record(tenant, product.id, "regular", result, priced.effective,
                                   dict(metadata))
        await self._count_coupons(tenant, [c.code for c in priced.applied])
        return grant

    async def _pay_cart(self, tenant: str, payload: PaymentPayload, cart_id: str) -> AccessGrant:
        cart = await self._cart(tenant, cart_id)
        total = Money(get_asset(cart.asset), cart.total_atomic)
        requirement = self._requirement(total, exact=True, recipient_account="", memo=None)
        await self._refuse_replay(payload)
        result = await self._verifier.verify(payload, requirement)
        grant = await self._record(tenant, cart.id, "cart", result, total,
                                   {**payload.payload.metadata, "cart_id": cart.id})
        if not await self._carts.mark_paid(tenant, cart.id, result.wallet):
            # Two different transactions raced for one cart and both landed; the money is
            # the merchant's either way, so the payer keeps access and we flag it loudly.
            log.error("cart paid twice", extra={"cart_id": cart.id,
                                                "signature": result.signature})
        codes = cart.metadata.get("coupon_codes", "")
        await self._count_coupons(tenant, [c for c in codes.split(",") if c])
        return grant

    async def _cart(self, tenant: str, cart_id: str) -> CartQuote:
        cart = await self._carts.get(tenant, cart_id)
        if cart is None:
            raise CedrosError(ErrorCode.CART_NOT_FOUND, f"cart {cart_id!r} not found")
        if cart.is_paid:
            raise CedrosError(ErrorCode.CART_ALREADY_PAID, details={"cartId": cart.id})
        if cart.is_expired_at(self._clock.now()):
            raise CedrosError(ErrorCode.QUOTE_EXPIRED, "the cart quote has expired",
                              {"cartId": cart.id})
        return cart

    async def _record(self, tenant: str, resource_id: str, kind: str,
                      result: VerificationResult, required: Money,
                      metadata: dict[str, str]) -> AccessGrant:
        now = self._clock.now()
        paid = Money(required.asset, result.amount_atomic)
        tx = PaymentTransaction(
            signature=result.signature, tenant_id=tenant, resource_id=resource_id,
            wallet=result.wallet, amount_atomic=paid.atomic, asset=paid.asset.code,
            created_at=now, metadata={**metadata, "resource_type": kind,
                                      "network": result.network},
        )
        if not await self._payments.record(tx):
            raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED,
                              details={"signature": result.signature})
        await self._notifier.payment_succeeded(PaymentEvent(
            event_id=new_event_id(), event_timestamp=now, tenant_id=tenant,
            resource_id=resource_id, method="x402", paid_at=now,
            crypto_atomic_amount=paid.atomic, crypto_token=paid.asset.code,
            wallet=result.wallet, proof_signature=result.signature, metadata=dict(tx.metadata),
        ))
        return AccessGrant(resource_id=resource_id, resource_type=kind, wallet=result.wallet,
                           signature=result.signature, amount=paid, network=result.network,
                           paid_at=now, expires_at=now + self._access_ttl)

    async def _count_coupons(self, tenant: str, codes: list[str]) -> None:
        """Best effort after payment (spec 19): a failure is logged, the payment stands."""
        for code in dict.fromkeys(codes):
            try:
                if not await self._coupons.increment_usage(tenant, code):
                    log.warning("coupon usage not counted", extra={"coupon_code": code})
            except Exception:
                log.exception("coupon usage increment failed", extra={"coupon_code": code})

    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None:
        return await self._payments.get(tenant, signature) if signature else None

    async def page(self, tenant: str, where: PaymentFilter, first: int,
                   after: tuple[datetime, str] | None = None,
                   ) -> tuple[list[PaymentTransaction], bool]:
        """Newest first; returns the page and whether more rows follow."""
        if not 1 <= first <= MAX_PAGE:
            raise CedrosError(ErrorCode.INVALID_FIELD, f"first must be 1..{MAX_PAGE}",
                              {"field": "first"})
        if where.method not in (None, "x402", "stripe"):
            raise CedrosError(ErrorCode.INVALID_FIELD, "method must be x402 or stripe",
                              {"field": "method"})
        rows = await self._payments.page(tenant, where, first + 1, after)
        return rows[:first], len(rows) > first

    async def totals(self, tenant: str, where: PaymentFilter) -> list[AssetTotal]:
        return await self._payments.totals(tenant, where)

    async def lookup(self, tenant: str, signature: str) -> PaymentTransaction:
        """A recorded payment by signature (GET /x402-transaction/verify)."""
        if not signature:
            raise CedrosError(ErrorCode.MISSING_FIELD, "signature is required",
                              {"field": "signature"})
        tx = await self._payments.get(tenant, signature)
        if tx is None:
            raise CedrosError(ErrorCode.TRANSACTION_NOT_FOUND,
                              "no verified payment with this signature")
        return tx
