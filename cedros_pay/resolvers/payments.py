"""x402 payments: turn a payment header into access, exactly once (specs 07, 13, 19).

The protocol (header shapes, scheme rules, wire headers) is `cedros_pay.x402`; the chain is
the verifier's. What is left here is the business: what a resource costs now, replay
protection, recording, coupon usage and the payment.succeeded event. `exchange` serves
every endpoint that takes a payment; `offer` makes the 402 of one that has none.

The order matters for money (`storage.repos.UnitOfWork` holds the storage side):
1. the required amount is recomputed from the catalog (single) or read from the stored
   cart (frozen prices), never taken from the client;
2. claims before the chain: a cart is claimed for the transaction (`cart_already_paid` for
   any other transaction while the claim holds) and each applied coupon's use is reserved
   by a conditional increment (`coupon_usage_limit_reached` for the one too many), so two
   racing payments never both reach the chain for one cart or one last coupon use;
3. the transaction is checked, sent and confirmed (`verifier.verify`); when that fails
   the coupon uses are given back and, unless the transaction may still land (a timeout,
   a lost RPC call), the cart claim too, and the error is re-raised;
4. the signature is recorded, the cart marked paid and the merchant's event staged (the
   outbox) in one unit of work *after* confirmation: of any number of racing requests (or
   server processes) carrying the same transaction, exactly one records it; a failed or
   dropped transaction leaves nothing behind, so the client may retry it. Only after the
   commit is the delivery worker woken and the notifier told (live events).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from solders.signature import Signature
from solders.transaction import VersionedTransaction

from cedros_pay.core.assets import get_asset
from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import REFUND_PREFIX, new_event_id, new_memo_nonce
from cedros_pay.core.models import (
    AssetTotal,
    CartQuote,
    PaymentFilter,
    PaymentTransaction,
    Product,
)
from cedros_pay.core.money import Money, display
from cedros_pay.integrations.solana.accounts import token_program_for
from cedros_pay.integrations.solana.transaction import decode_transaction
from cedros_pay.integrations.solana.verifier import Requirement, VerificationResult
from cedros_pay.observability.hooks import (
    PaymentCompletedEvent,
    PaymentHook,
    PaymentSettledEvent,
)
from cedros_pay.resolvers.events import (
    AfterCommit,
    EventOutbox,
    Notifier,
    PaymentEvent,
    nothing_after_commit,
)
from cedros_pay.resolvers.pricing import Priced, Pricing
from cedros_pay.resolvers.quotes import Quote, Quotes
from cedros_pay.resolvers.refunds import Executed
from cedros_pay.storage.repos import CartQuoteRepo, CouponRepo, PaymentRepo, UnitOfWork
from cedros_pay.x402 import cedros_v0, exact, http
from cedros_pay.x402.schemas import (
    JSON_MIME,
    ExactRequirement,
    PaymentHeader,
    PaymentPayload,
    PaymentRequired,
    ResourceType,
    SettleResponse,
    SolanaPayload,
)

log = logging.getLogger("cedros_pay.payments")
_EMPTY_SIGNATURE = str(Signature.default())

ACCESS_TTL = timedelta(minutes=45)  # spec 07 DefaultAccessTTL
# How long a payment holds its cart: longer than submit + confirm (blockhash expiry).
CLAIM_LEASE = timedelta(minutes=2)
MAX_PAGE = 100
COUPON_KEYS = ("couponCode", "coupon_code")  # DESIGN §7: the Cedros React client's keys


class PaymentVerifier(Protocol):
    async def verify(self, payload: PaymentPayload, requirement: Requirement,
                     tx: VersionedTransaction | None = None) -> VerificationResult: ...


class FeePayers(Protocol):
    """The server wallets that pay fees for exact-scheme payments (the gasless seam).

    `pick` names the wallet to advertise in a quote; `holds` says whether an address is
    one of ours (a quote made a minute ago may name another wallet than `pick` now)."""

    def pick(self) -> str | None: ...

    def holds(self, address: str) -> bool: ...


class MintProgramSource(Protocol):
    """The token program owning a mint (the chain's answer; `solana.mints.MintPrograms`)."""

    async def program_of(self, mint: str) -> str: ...


class KnownMintPrograms:
    """Offline default: the built-in table of known mints."""

    async def program_of(self, mint: str) -> str:
        return str(token_program_for(mint))


class RefundExecutor(Protocol):
    """Settles an approved refund's transaction (`resolvers.refunds.Refunds`)."""

    async def execute(self, tenant: str, payload: PaymentPayload) -> Executed: ...


class Offer(NamedTuple):
    """A 402's content: the Cedros (v0) quote for its body and, for the PAYMENT-REQUIRED
    header, the official exact-scheme offer at the same price (no `accepts` without a
    server wallet to pay the fee)."""

    quote: Quote
    required: PaymentRequired


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


@dataclass(frozen=True, slots=True)
class Settled:
    """A settled payment of any protocol version; the version picks the reply header."""

    grant: AccessGrant
    version: int  # 0 (Cedros), 1 or 2 (official exact scheme)

    @property
    def response(self) -> SettleResponse:
        g = self.grant
        return SettleResponse(self.version, g.network, transaction=g.signature, payer=g.wallet)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused payment: the spec error, its settlement report in the version the client
    paid with, and (on a 402 for a known resource) the offer to pay again against."""

    error: CedrosError
    response: SettleResponse
    offer: PaymentRequired | None


@dataclass(frozen=True, slots=True)
class Due:
    """What a resource costs now (None: it is not sold for crypto)."""

    product: Product
    price: Priced | None


@dataclass(slots=True)
class _Attempt:
    """What one exchange has read and priced so far: its refusal reuses both."""

    header: PaymentHeader | None = None
    due: Due | None = None


@dataclass(frozen=True, slots=True)
class _Sale:
    """What one payment buys and what it holds before the chain: the cart it claims (as
    `holder`, the transaction's id) and the coupon uses it reserves."""

    tenant: str
    resource_id: str
    kind: str  # "regular" | "cart"
    required: Money
    metadata: dict[str, str]
    coupon_codes: tuple[str, ...] = ()
    cart_id: str | None = None
    holder: str = ""


@dataclass(slots=True)
class _Settling:
    """One transaction this process is settling: copies wait on `done`."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: str = ""  # the signature recorded, once it is


def _no_wallets(_address: str) -> bool:
    return False


def _transaction_id(tx: VersionedTransaction) -> str:
    """The first signature present: the transaction's id, or (gasless, the fee payer's
    slot still empty) the payer's, which equally names these exact bytes."""
    for signature in tx.signatures:
        text = str(signature)
        if text != _EMPTY_SIGNATURE:
            return text
    return ""


# Outcomes after which the node may have the transaction and it may still land.
_UNDECIDED = frozenset({ErrorCode.TRANSACTION_NOT_CONFIRMED, ErrorCode.NETWORK_ERROR,
                        ErrorCode.RPC_ERROR})


def _may_still_land(exc: BaseException) -> bool:
    """Whether the transaction may yet land after `exc`: a refusal (offline, by the node,
    or a landed failure) is final; a timeout, a lost RPC call or an unexpected error is
    not, so the cart stays claimed (a resend of the same bytes still passes) until its
    lease runs out."""
    return not isinstance(exc, CedrosError) or exc.code in _UNDECIDED


class Payments:
    """`coupons` is the catalog's coupon repository (it reserves uses, whichever source it
    is); `unit_of_work` the store's (`Store.unit_of_work`); `outbox` stages the merchant's
    event with the payment (None: no webhook); `notifier` is told after the commit and
    must not queue the event again."""

    def __init__(self, *, quotes: Quotes, pricing: Pricing, carts: CartQuoteRepo,
                 payments: PaymentRepo, coupons: CouponRepo,
                 unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
                 verifier: PaymentVerifier, notifier: Notifier, clock: Clock,
                 access_ttl: timedelta = ACCESS_TTL, claim_lease: timedelta = CLAIM_LEASE,
                 fee_payers: FeePayers | None = None,
                 mint_programs: MintProgramSource | None = None,
                 outbox: EventOutbox | None = None,
                 hooks: PaymentHook | None = None,
                 refunds: RefundExecutor | None = None) -> None:
        self._refunds = refunds
        self._unit_of_work = unit_of_work
        self._claim_lease = claim_lease
        self._outbox = outbox
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
        # Transactions being settled by this process, by id: a copy waits for the first.
        self._settling: dict[str, _Settling] = {}

    # --- the exchange ------------------------------------------------------------------

    async def exchange(self, tenant: str, *, x_payment: str | None,
                       payment_signature: str | None, resource_id: str | None,
                       coupon_code: str | None, url: str) -> Settled | Refused:
        """Settle the request's payment header, decoded once: PAYMENT-SIGNATURE carries v2;
        X-PAYMENT carries 0 (the Cedros format, coupon in its metadata) or 1 (exact).
        `resource_id` is the resource the endpoint sells (None for POST /verify, where a
        v0 payload names it); `coupon_code` the one the request quoted with (exact
        payments only). A refusal comes back as `Refused`, with the offer this attempt
        already priced when it is a 402 (`url` is the resource's, for that offer)."""
        started = time.perf_counter()
        attempt = _Attempt()
        try:
            header = attempt.header = http.read_payment(x_payment, payment_signature)
            if header.version == cedros_v0.VERSION:
                settled = await self._pay_v0(tenant, cedros_v0.parse_v0(header), resource_id,
                                             attempt)
            else:
                settled = await self._pay_exact(tenant, header, resource_id, coupon_code,
                                                attempt)
        except CedrosError as err:
            self._report(started, err)
            return await self._refused(
                tenant, err, http.answer_version(payment_signature, attempt.header),
                resource_id or cedros_v0.named_resource(attempt.header), coupon_code, url,
                attempt.due)
        self._report(started, settled)
        return settled

    def _report(self, started: float, outcome: Settled | CedrosError) -> None:
        """Every attempt goes to the observability hooks (spec 14 payment metrics)."""
        if self._hooks is None:
            return
        duration = time.perf_counter() - started
        if isinstance(outcome, CedrosError):
            self._hooks.on_payment_completed(PaymentCompletedEvent(
                resource_id="", method="x402", duration=duration, success=False,
                error_code=outcome.code.value))
            return
        g = outcome.grant
        self._hooks.on_payment_completed(PaymentCompletedEvent(
            resource_id=g.resource_id, method="x402", wallet=g.wallet,
            amount_atomic=g.amount.atomic, decimals=g.amount.asset.decimals,
            currency=g.amount.asset.code, duration=duration))
        self._hooks.on_payment_settled(PaymentSettledEvent(
            resource_id=g.resource_id, method="x402", wallet=g.wallet, tx_hash=g.signature))

    async def _refused(self, tenant: str, err: CedrosError, version: int,
                       target: str | None, coupon_code: str | None, url: str,
                       due: Due | None) -> Refused:
        """Every 402 carries PAYMENT-REQUIRED, a refused payment's too: the client may pay
        again (with `error` saying what was wrong with the last attempt). The price this
        attempt worked out is reused; one that failed before pricing is priced once."""
        response = http.refusal(version, self._quotes.terms.network, err)
        if err.http_status != 402 or not target:
            return Refused(err, response, None)
        if due is None:
            try:
                due = await self.due(tenant, target, coupon_code)
            except CedrosError:
                return Refused(err, response, None)  # the resource is gone; the body says why
        if due.price is None:  # not sold for crypto: nothing to accept
            return Refused(err, response, PaymentRequired(url, error=err.message))
        return Refused(err, response, self._payment_required(
            due.product, due.price.effective, self._fee_payer(), url, err.message))

    # --- pricing and offers ------------------------------------------------------------

    async def due(self, tenant: str, resource_id: str, coupon_code: str | None) -> Due:
        """What an active product costs now with `coupon_code` (spec 19 steps 1-5)."""
        product = await self._quotes.product(tenant, resource_id)
        return Due(product, await self._pricing.crypto_price(tenant, product, coupon_code))

    async def offer(self, tenant: str, resource_id: str, coupon_code: str | None,
                    url: str) -> Offer:
        """What a 402 for `resource_id` offers: the v0 quote and, when a server wallet can
        pay the fee, the exact-scheme requirement at the same price (paid to the merchant
        wallet's associated token account, with a memo unique to this quote)."""
        quote = await self._quotes.quote(tenant, resource_id, coupon_code)
        crypto = quote.crypto
        if crypto is None:
            return Offer(quote, PaymentRequired(url))
        fee_payer = self._fee_payer()
        if fee_payer is None:
            return Offer(quote, PaymentRequired(url, crypto.description, crypto.mime_type))
        product = await self._quotes.product(tenant, resource_id)
        return Offer(quote, self._payment_required(product, crypto.amount, fee_payer, url))

    def _payment_required(self, product: Product, amount: Money, fee_payer: str | None,
                          url: str, error: str | None = None) -> PaymentRequired:
        """PAYMENT-REQUIRED for `product` at `amount`, paid to the merchant's wallet."""
        accepts: tuple[ExactRequirement, ...] = ()
        if fee_payer is not None:
            accepts = (self.exact_requirement(
                amount, self._quotes.terms.payment_address, self._exact_memo(product, amount),
                fee_payer, url=url, description=product.description),)
        return PaymentRequired(url, product.description, JSON_MIME, accepts, error)

    def _fee_payer(self) -> str | None:
        return self._fee_payers.pick() if self._fee_payers is not None else None

    def exact_requirement(self, amount: Money, pay_to: str, memo: str, fee_payer: str, *,
                          url: str, description: str,
                          mime_type: str = JSON_MIME) -> ExactRequirement:
        """The exact-scheme offer to pay `amount` to the wallet `pay_to` (its associated
        token account for the amount's mint on this network) with `memo`, `fee_payer`
        paying the network fee; valid for the quote TTL."""
        terms = self._quotes.terms
        mint, _decimals = self._quotes.mint_for(amount)
        return ExactRequirement(
            network=terms.network, asset=mint, amount_atomic=amount.atomic, pay_to=pay_to,
            max_timeout_seconds=int(terms.quote_ttl.total_seconds()), fee_payer=fee_payer,
            memo=memo, url=url, description=description, mime_type=mime_type)

    def transfer_requirement(self, amount: Money, pay_to: str, *,
                             token_account: str | None = None, exact: bool = False,
                             memo: str | re.Pattern[str] | None = None,
                             token_program: str | None = None) -> Requirement:
        """What a transaction paying `amount` to the wallet `pay_to` must do: move the
        amount's mint on this network into `pay_to`'s associated token account (or
        `token_account`, when the product names one); `exact` for paid == required."""
        terms = self._quotes.terms
        mint, decimals = self._quotes.mint_for(amount)
        return Requirement(
            network=terms.network, mints=(mint,), decimals=decimals,
            amount_atomic=amount.atomic, recipient_owner=pay_to,
            recipient_token_account=token_account, exact=exact, memo=memo,
            token_program=token_program)

    def _exact_memo(self, product: Product, amount: Money) -> str:
        return exact.quote_memo(product.memo_template, self._quotes.terms.memo_prefix, {
            "resource": product.id, "nonce": new_memo_nonce(),
            "amount": display(amount).split(" ")[0]})

    # --- the schemes -------------------------------------------------------------------

    async def _pay_exact(self, tenant: str, header: PaymentHeader, resource_id: str | None,
                         coupon_code: str | None, attempt: _Attempt) -> Settled:
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
        if resource_id.startswith(cedros_v0.CART_PREFIXES):
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "carts are paid with the Cedros (x402Version 0) format")
        due = await self.due(tenant, resource_id, coupon_code)
        attempt.due = due
        product, priced = due.product, self._sold(due)
        amount = priced.effective
        mint, _decimals = self._quotes.mint_for(amount)
        fee_payers = self._fee_payers
        holds = fee_payers.holds if fee_payers is not None else _no_wallets
        shape = exact.memo_shape(product.memo_template, terms.memo_prefix, product.id)
        memo: str | re.Pattern[str] = shape
        if payment.accepted is not None:
            current = ExactRequirement(
                network=terms.network, asset=mint, amount_atomic=amount.atomic,
                pay_to=terms.payment_address, max_timeout_seconds=0, fee_payer="", memo="",
                url="", description="")
            exact.check_accepted(payment.accepted, current, is_fee_payer=holds,
                                 memo_shape=shape)
            memo = exact.accepted_memo(payment.accepted) or memo
        tx = decode_transaction(payment.transaction)
        exact.check_layout(tx, is_fee_payer=holds, memo=memo)
        requirement = self.transfer_requirement(
            amount, terms.payment_address, memo=memo,
            token_program=await self._mint_programs.program_of(mint))
        payload = PaymentPayload(header.version, exact.SCHEME, terms.network,
                                 SolanaPayload(transaction=payment.transaction,
                                               resource=product.id))
        metadata = {"x402_version": str(header.version), "scheme": exact.SCHEME}
        if coupon_code:
            metadata["coupon_code"] = coupon_code
        sale = _Sale(tenant, product.id, "regular", amount, metadata,
                     coupon_codes=tuple(c.code for c in priced.applied))
        return Settled(await self._settle(sale, payload, requirement, tx), header.version)

    async def _pay_v0(self, tenant: str, payload: PaymentPayload, resource_id: str | None,
                      attempt: _Attempt) -> Settled:
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
        if kind is ResourceType.REFUND or target.startswith(REFUND_PREFIX):
            return Settled(await self._pay_refund(tenant, payload), cedros_v0.VERSION)
        if kind is ResourceType.CART or target.startswith(cedros_v0.CART_PREFIXES):
            grant = await self._pay_cart(tenant, payload, target.removeprefix("cart:"))
        else:
            grant = await self._pay_resource(tenant, payload, target, attempt)
        return Settled(grant, cedros_v0.VERSION)

    async def _pay_refund(self, tenant: str, payload: PaymentPayload) -> AccessGrant:
        if self._refunds is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE, "refunds are not enabled here")
        done = await self._refunds.execute(tenant, payload)
        r = done.result
        return AccessGrant(resource_id=done.refund.id, resource_type="refund", wallet=r.wallet,
                           signature=r.signature, amount=Money(get_asset(done.refund.asset),
                                                               r.amount_atomic),
                           network=r.network, paid_at=done.paid_at, expires_at=done.paid_at,
                           timings=(("check", r.check_ms), ("submit", r.submit_ms),
                                    ("confirm", r.confirm_ms)))

    @staticmethod
    def _sold(due: Due) -> Priced:
        if due.price is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {due.product.id!r} cannot be paid with x402")
        return due.price

    async def _refuse_replay(self, payload: PaymentPayload) -> VersionedTransaction | None:
        """Fast path only: the atomic insert after settlement is what guarantees it. Hands
        back the transaction when it had to decode it for its signature."""
        signature = payload.payload.signature
        tx = None
        if not signature:
            tx = decode_transaction(payload.payload.transaction)
            signature = str(tx.signatures[0]) if tx.signatures else ""
        if signature and await self._payments.has_been_processed(signature):
            raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED, details={"signature": signature})
        return tx

    async def _pay_resource(self, tenant: str, payload: PaymentPayload, resource_id: str,
                            attempt: _Attempt) -> AccessGrant:
        metadata = payload.payload.metadata
        coupon = next((metadata[k] for k in COUPON_KEYS if metadata.get(k)), None)
        due = await self.due(tenant, resource_id, coupon)
        attempt.due = due
        product, priced = due.product, self._sold(due)
        requirement = self.transfer_requirement(
            priced.effective, self._quotes.terms.payment_address,
            token_account=product.crypto_account or None,
            memo=cedros_v0.memo_rule(product.memo_template, product.id))
        tx = await self._refuse_replay(payload)
        if tx is None:  # copies wait for each other by the transaction's id: decode it once
            tx = decode_transaction(payload.payload.transaction)
        sale = _Sale(tenant, product.id, "regular", priced.effective, dict(metadata),
                     coupon_codes=tuple(c.code for c in priced.applied))
        return await self._settle(sale, payload, requirement, tx)

    async def _pay_cart(self, tenant: str, payload: PaymentPayload, cart_id: str) -> AccessGrant:
        cart = await self._cart(tenant, cart_id)
        total = Money(get_asset(cart.asset), cart.total_atomic)
        requirement = self.transfer_requirement(total, self._quotes.terms.payment_address,
                                                exact=True)
        tx = await self._refuse_replay(payload)
        if tx is None:  # the claim is held by the transaction's id: decode it once here
            tx = decode_transaction(payload.payload.transaction)
        codes = cart.metadata.get("coupon_codes", "")
        sale = _Sale(tenant, cart.id, "cart", total,
                     {**payload.payload.metadata, "cart_id": cart.id},
                     coupon_codes=tuple(c for c in codes.split(",") if c), cart_id=cart.id,
                     holder=_transaction_id(tx))
        return await self._settle(sale, payload, requirement, tx)

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

    # --- settlement: claims, the chain, one unit of work ----------------------------------

    async def _settle(self, sale: _Sale, payload: PaymentPayload, requirement: Requirement,
                      tx: VersionedTransaction | None) -> AccessGrant:
        """Claim, send, record (module doc, steps 2-4), one copy of a transaction at a time.

        Copies of one transaction that arrive together (a client retrying, an agent sending
        to several routes) would each send and confirm it before the ledger refused all but
        one. A copy waits instead for this process's settlement of it, then meets the
        ledger: refused as a replay when that recorded it, settles itself when it failed.
        Only work is saved; exactly-once is still the ledger's insert (step 4)."""
        # The transaction's own id, never the header's `signature` (a client's claim, and
        # for a gasless one the empty fee-payer slot that every such transaction shares).
        key = _transaction_id(tx) if tx is not None else ""
        while key and (first := self._settling.get(key)) is not None:
            await first.done.wait()
            if first.recorded:
                raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED,
                                  details={"signature": first.recorded})
        mine = self._settling[key] = _Settling()
        try:
            reserved = await self._claim(sale)
            try:
                result = await self._verifier.verify(payload, requirement, tx)
            except BaseException as exc:
                await self._give_back(sale, reserved, keep_claim=_may_still_land(exc))
                raise
            grant = await self._record(sale, result, reserved)
            mine.recorded = result.signature
            return grant
        finally:
            if self._settling.get(key) is mine:
                del self._settling[key]
            mine.done.set()

    async def _claim(self, sale: _Sale) -> tuple[str, ...]:
        """Hold the cart and reserve one use of each coupon; the codes reserved."""
        if sale.cart_id is not None and not await self._carts.claim(
                sale.tenant, sale.cart_id, sale.holder, self._clock.now(), self._claim_lease):
            raise CedrosError(ErrorCode.CART_ALREADY_PAID,
                              "another payment for this cart is in progress or settled",
                              {"cartId": sale.cart_id})
        reserved: list[str] = []
        try:
            for code in dict.fromkeys(sale.coupon_codes):
                if not await self._coupons.increment_usage(sale.tenant, code):
                    raise CedrosError(ErrorCode.COUPON_USAGE_LIMIT_REACHED,
                                      details={"couponCode": code})
                reserved.append(code)
        except BaseException:
            await self._give_back(sale, tuple(reserved), keep_claim=False)
            raise
        return tuple(reserved)

    async def _give_back(self, sale: _Sale, reserved: tuple[str, ...], *,
                         keep_claim: bool) -> None:
        """Return the coupon uses and (unless the transaction may still land) the cart.
        A failure here is logged: the claim then ends with its lease, the use stays
        counted (the safe side), and the caller's own error is the one to report."""
        try:
            for code in reserved:
                await self._coupons.release_usage(sale.tenant, code)
            if sale.cart_id is not None and not keep_claim:
                await self._carts.release_claim(sale.tenant, sale.cart_id, sale.holder)
        except Exception:
            log.exception("giving back a payment's claims failed",
                          extra={"resource_id": sale.resource_id})

    async def _record(self, sale: _Sale, result: VerificationResult,
                      reserved: tuple[str, ...]) -> AccessGrant:
        """The landed payment's writes, in one unit of work: the payment row, the cart's
        payer and the staged event land together or not at all."""
        tenant, now = sale.tenant, self._clock.now()
        paid = Money(sale.required.asset, result.amount_atomic)
        tx = PaymentTransaction(
            signature=result.signature, tenant_id=tenant, resource_id=sale.resource_id,
            wallet=result.wallet, amount_atomic=paid.atomic, asset=paid.asset.code,
            created_at=now, metadata={**sale.metadata, "resource_type": sale.kind,
                                      "network": result.network},
        )
        event = PaymentEvent(
            event_id=new_event_id(), event_timestamp=now, tenant_id=tenant,
            resource_id=sale.resource_id, method="x402", paid_at=now,
            crypto_atomic_amount=paid.atomic, crypto_token=paid.asset.code,
            wallet=result.wallet, proof_signature=result.signature, metadata=dict(tx.metadata),
        )
        after_commit: AfterCommit = nothing_after_commit
        try:
            async with self._unit_of_work() as uow:
                if not await uow.payments.record(tx):
                    raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED,
                                      details={"signature": result.signature})
                if sale.cart_id is not None and not await uow.carts.mark_paid(
                        tenant, sale.cart_id, result.wallet):
                    raise CedrosError(ErrorCode.CART_ALREADY_PAID, details={"cartId": sale.cart_id})
                if self._outbox is not None:
                    after_commit = await self._outbox.stage(uow, event)
        except BaseException as exc:
            # A resend of a recorded transaction: the first settlement's uses count.
            # Otherwise the unit wrote nothing: the uses go back (a retry of the same
            # transaction reserves them again), the claim stays (the money moved).
            if not (isinstance(exc, CedrosError)
                    and exc.code is ErrorCode.PAYMENT_ALREADY_USED):
                self._unrecorded(sale, result)
            await self._give_back(sale, reserved, keep_claim=True)
            raise
        after_commit()
        await self._notifier.payment_succeeded(event)
        return AccessGrant(resource_id=sale.resource_id, resource_type=sale.kind,
                           wallet=result.wallet, signature=result.signature, amount=paid,
                           network=result.network, paid_at=now, expires_at=now + self._access_ttl,
                           timings=(("check", result.check_ms), ("submit", result.submit_ms),
                                    ("confirm", result.confirm_ms)))

    @staticmethod
    def _unrecorded(sale: _Sale, result: VerificationResult) -> None:
        """The money moved but its record did not land: the cart claim stays (releasing
        it would let a second transaction pay again); a resend of the same transaction
        settles it, otherwise reconcile by hand."""
        log.error("landed payment not recorded", extra={
            "resource_id": sale.resource_id, "cart_id": sale.cart_id,
            "signature": result.signature, "wallet": result.wallet})

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
