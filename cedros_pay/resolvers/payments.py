"""x402 payments: turn a payment header into access, exactly once (specs 07, 13, 19).

Two formats share everything after parsing (replay protection, recording, the
payment.succeeded event): the Cedros format (x402Version 0, `authorize`) and the official
x402 `exact` scheme (versions 1 and 2, `settle` routes by version; `offer` makes the 402).

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
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from cedros_pay.core.assets import get_asset
from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_event_id, new_memo_nonce
from cedros_pay.core.memo import DEFAULT_TEMPLATE, interpolate_memo, memo_matcher
from cedros_pay.core.models import (
    AssetTotal,
    CartQuote,
    PaymentFilter,
    PaymentTransaction,
    Product,
)
from cedros_pay.core.money import Money, display
from cedros_pay.integrations.solana import exact
from cedros_pay.integrations.solana.accounts import associated_token_address, token_program_for
from cedros_pay.integrations.solana.payload import (
    PaymentHeader,
    PaymentPayload,
    ResourceType,
    SolanaPayload,
    decode_payment_header,
    parse_payment_header,
    parse_v0,
)
from cedros_pay.integrations.solana.transaction import decode_transaction
from cedros_pay.integrations.solana.verifier import Requirement, VerificationResult
from cedros_pay.observability.hooks import (
    PaymentCompletedEvent,
    PaymentHook,
    PaymentSettledEvent,
)
from cedros_pay.resolvers.events import Notifier, PaymentEvent
from cedros_pay.resolvers.pricing import Pricing
from cedros_pay.resolvers.quotes import Quote, Quotes
from cedros_pay.storage.repos import CartQuoteRepo, CouponRepo, PaymentRepo

log = logging.getLogger("cedros_pay.payments")

ACCESS_TTL = timedelta(minutes=45)  # spec 07 DefaultAccessTTL
MAX_PAGE = 100
COUPON_KEYS = ("couponCode", "coupon_code")  # DESIGN §7: the Cedros React client's keys


class PaymentVerifier(Protocol):
    async def verify(self, payload: PaymentPayload,
                     requirement: Requirement) -> VerificationResult: ...


class FeePayers(Protocol):
    """The server wallets that pay fees for exact-scheme payments (the gasless seam).

    `pick` names the wallet to advertise in a quote; `holds` says whether an address is
    one of ours (a quote made a minute ago may name another wallet than `pick` now)."""

    def pick(self) -> str | None: ...

    def holds(self, address: str) -> bool: ...


class StaticFeePayers:
    """A fixed list of server wallet addresses, advertised round-robin."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self._addresses = addresses
        self._next = 0

    def pick(self) -> str | None:
        if not self._addresses:
            return None
        address = self._addresses[self._next % len(self._addresses)]
        self._next += 1
        return address

    def holds(self, address: str) -> bool:
        return address in self._addresses


class MintProgramSource(Protocol):
    """The token program owning a mint (the chain's answer; `exact.MintPrograms`)."""

    async def program_of(self, mint: str) -> str: ...


class KnownMintPrograms:
    """Offline default: the built-in table of known mints."""

    async def program_of(self, mint: str) -> str:
        return str(token_program_for(mint))


class Offer(NamedTuple):
    """A 402's content: the Cedros (v0) quote and, when a fee payer is available, the
    official exact-scheme requirement for the same price."""

    quote: Quote
    exact: exact.ExactRequirement | None


@dataclass(frozen=True, slots=True)
class Settled:
    """A settled payment of any protocol version; the version picks the reply headers."""

    grant: AccessGrant
    version: int  # 0 (Cedros), 1 or 2 (official exact scheme)
    network: str  # the network as that version names it (Cedros name, legacy, CAIP-2)


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
    # Where the verification's time went, in ms: check (offline), submit, confirm.
    timings: tuple[tuple[str, float], ...] = ()


_NONCE = re.compile(r"\{\{?\s*nonce\s*\}?\}")


def _no_wallets(_address: str) -> bool:
    return False


class Payments:
    def __init__(self, *, quotes: Quotes, pricing: Pricing, carts: CartQuoteRepo,
                 payments: PaymentRepo, coupons: CouponRepo, verifier: PaymentVerifier,
                 notifier: Notifier, clock: Clock, access_ttl: timedelta = ACCESS_TTL,
                 fee_payers: FeePayers | None = None,
                 mint_programs: MintProgramSource | None = None,
                 hooks: PaymentHook | None = None) -> None:
        self._quotes = quotes
        self._pricing = pricing
        self._carts = carts
        self._payments = payments
        self._coupons = coupons
        self._verifier = verifier
        self._notifier = notifier
        self._clock = clock
        self._access_ttl = access_ttl
        self._fee_payers = fee_payers
        self._mint_programs = mint_programs or KnownMintPrograms()
        self._hooks = hooks

    async def _measured(self, run: Callable[[], Awaitable[Settled]]) -> Settled:
        """Report every attempt to the observability hooks (spec 14 payment metrics)."""
        if self._hooks is None:
            return await run()
        started = time.perf_counter()
        try:
            settled = await run()
        except CedrosError as err:
            self._hooks.on_payment_completed(PaymentCompletedEvent(
                resource_id="", method="x402", duration=time.perf_counter() - started,
                success=False, error_code=err.code.value))
            raise
        g = settled.grant
        self._hooks.on_payment_completed(PaymentCompletedEvent(
            resource_id=g.resource_id, method="x402", wallet=g.wallet,
            amount_atomic=g.amount.atomic, decimals=g.amount.asset.decimals,
            currency=g.amount.asset.code, duration=time.perf_counter() - started))
        self._hooks.on_payment_settled(PaymentSettledEvent(
            resource_id=g.resource_id, method="x402", wallet=g.wallet, tx_hash=g.signature))
        return settled

    async def authorize(self, tenant: str, header: str | None,
                        resource_id: str | None = None) -> AccessGrant:
        """Verify and settle a version-0 (Cedros) X-PAYMENT header; `resource_id`, when
        given, is the resource the request is for (the payload must name the same one)."""
        async def run() -> Settled:
            if not header:
                raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                                  "X-PAYMENT header is required")
            grant = await self._authorize_v0(tenant, parse_payment_header(header), resource_id)
            return Settled(grant, 0, grant.network)

        return (await self._measured(run)).grant

    async def settle(self, tenant: str, *, x_payment: str | None,
                     payment_signature: str | None, resource_id: str | None,
                     coupon_code: str | None = None) -> Settled:
        """Any x402 payment header, routed on its version: PAYMENT-SIGNATURE carries v2;
        X-PAYMENT carries 0 (the Cedros format, coupon in its metadata) or 1 (exact).
        `coupon_code` is the one the request quoted with (exact payments only)."""
        return await self._measured(lambda: self._settle(
            tenant, x_payment=x_payment, payment_signature=payment_signature,
            resource_id=resource_id, coupon_code=coupon_code))

    async def _settle(self, tenant: str, *, x_payment: str | None,
                      payment_signature: str | None, resource_id: str | None,
                      coupon_code: str | None) -> Settled:
        if payment_signature:
            header = decode_payment_header(payment_signature)
            if header.version != 2:
                raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                                  "PAYMENT-SIGNATURE carries x402Version 2 only",
                                  {"reason": "unsupported_version",
                                   "x402Version": header.version})
        elif x_payment:
            header = decode_payment_header(x_payment)
        else:
            raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF,
                              "a PAYMENT-SIGNATURE or X-PAYMENT header is required")
        if header.version == 0:
            grant = await self._authorize_v0(tenant, parse_v0(header), resource_id)
            return Settled(grant, 0, grant.network)
        return await self._pay_exact(tenant, header, resource_id, coupon_code)

    async def offer(self, tenant: str, resource_id: str, coupon_code: str | None,
                    url: str) -> Offer:
        """What a 402 for `resource_id` offers: the v0 quote and, when a server wallet can
        pay the fee, the exact-scheme requirement at the same price (paid to the merchant
        wallet's associated token account, with a memo unique to this quote)."""
        quote = await self._quotes.quote(tenant, resource_id, coupon_code)
        crypto = quote.crypto
        fee_payer = self._fee_payers.pick() if self._fee_payers is not None else None
        if crypto is None or fee_payer is None:
            return Offer(quote, None)
        product = await self._quotes.product(tenant, resource_id)
        return Offer(quote, exact.ExactRequirement(
            network=crypto.network, asset=crypto.asset_mint,
            amount_atomic=crypto.amount.atomic, pay_to=crypto.pay_to_owner,
            max_timeout_seconds=crypto.max_timeout_seconds, fee_payer=fee_payer,
            memo=self._exact_memo(product, crypto.amount), url=url,
            description=crypto.description, mime_type=crypto.mime_type))

    def _exact_templates(self, product: Product) -> tuple[str, str]:
        """The product's memo template, made unique per quote with a nonce if it has none;
        and a short fallback for templates that would exceed the scheme's 256 bytes."""
        base = product.memo_template or DEFAULT_TEMPLATE
        main = base if _NONCE.search(base) else base + " {nonce}"
        return main, self._quotes.terms.memo_prefix + ":{resource}:{nonce}"

    def _exact_memo(self, product: Product, amount: Money) -> str:
        values = {"resource": product.id, "nonce": new_memo_nonce(),
                  "amount": display(amount).split(" ")[0]}
        main, fallback = self._exact_templates(product)
        memo = interpolate_memo(main, values)
        if len(memo.encode()) > exact.MAX_MEMO_BYTES:
            memo = interpolate_memo(fallback, values)
        return memo

    def _exact_memo_shape(self, product: Product) -> re.Pattern[str]:
        """Every memo `_exact_memo` can produce for this product (quotes are not stored)."""
        main, fallback = self._exact_templates(product)
        fixed = {"resource": product.id}
        return re.compile(f"(?:{memo_matcher(main, fixed).pattern})"
                          f"|(?:{memo_matcher(fallback, fixed).pattern})")

    async def _pay_exact(self, tenant: str, header: PaymentHeader, resource_id: str | None,
                         coupon_code: str | None) -> Settled:
        """The official exact scheme: the offer is recomputed (price, recipient, mint), the
        client's `accepted` (v2) must be it, the transaction must have the scheme's shape
        with one of our wallets as a fee payer that does nothing else; then the ordinary
        verifier checks the transfer, co-signs, sends (preflight simulates) and confirms."""
        payment = exact.parse_exact(header)
        terms = self._quotes.terms
        exact.check_network(payment, terms.network)
        if not resource_id:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "exact-scheme payments are settled on the resource's endpoint "
                              "(repeat the request that answered 402)")
        if resource_id.startswith(("cart:", "cart_")):
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "carts are paid with the Cedros (x402Version 0) format")
        product = await self._quotes.product(tenant, resource_id)
        priced = await self._pricing.crypto_price(tenant, product, coupon_code)
        if priced is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {product.id!r} cannot be paid with x402")
        amount = priced.effective
        mint, decimals = self._quotes.mint_for(amount)
        fee_payers = self._fee_payers
        holds = fee_payers.holds if fee_payers is not None else _no_wallets
        shape = self._exact_memo_shape(product)
        memo: str | re.Pattern[str] = shape
        if payment.accepted is not None:
            current = exact.ExactRequirement(
                network=terms.network, asset=mint, amount_atomic=amount.atomic,
                pay_to=terms.payment_address, max_timeout_seconds=0, fee_payer="", memo="",
                url="", description="")
            exact.check_accepted(payment.accepted, current, is_fee_payer=holds,
                                 memo_shape=shape)
            extra = payment.accepted.get("extra")
            quoted = extra.get("memo") if isinstance(extra, Mapping) else None
            if isinstance(quoted, str):
                memo = quoted
        exact.check_layout(decode_transaction(payment.transaction), is_fee_payer=holds,
                           memo=memo)
        requirement = Requirement(
            network=terms.network, mints=(mint,), decimals=decimals,
            amount_atomic=amount.atomic, recipient_owner=terms.payment_address, memo=memo,
            token_program=await self._mint_programs.program_of(mint))
        payload = PaymentPayload(header.version, exact.SCHEME, terms.network,
                                 SolanaPayload(transaction=payment.transaction,
                                               resource=product.id))
        result = await self._verifier.verify(payload, requirement)
        metadata = {"x402_version": str(header.version), "scheme": exact.SCHEME}
        if coupon_code:
            metadata["coupon_code"] = coupon_code
        grant = await self._record(tenant, product.id, "regular", result, amount, metadata)
        await self._count_coupons(tenant, [c.code for c in priced.applied])
        network = (exact.caip2(terms.network) if header.version == 2
                   else exact.v1_network(terms.network))
        return Settled(grant, header.version, network)

    async def _authorize_v0(self, tenant: str, payload: PaymentPayload,
                            resource_id: str | None) -> AccessGrant:
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
                           paid_at=now, expires_at=now + self._access_ttl,
                           timings=(("check", result.check_ms), ("submit", result.submit_ms),
                                    ("confirm", result.confirm_ms)))

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
