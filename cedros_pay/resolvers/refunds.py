"""Refunds (spec 04, spec 19 "Refund Processing"; DESIGN §7): a buyer asks, an admin
approves or denies, and the merchant wallet pays the approved quote through POST /verify.

Status is derived from the stored record: `processed` once it has a signature, `approved`
while the approval's quote is recorded in its metadata, else `pending`; a denied refund is
deleted (the reference's rule), so `denied` is only ever an answer, never a row. Each
write to an existing refund is conditional on the status it was read in (the repo's
`transition` / `delete_if`), and a new one is stored only if its purchase has none
(`create_once`): of an approval and a denial racing, one wins, and of racing first
requests, one creates the refund the others answer.

Money rules: the requested amount is read from its decimal text (never a binary float),
in the purchase's token, and must be 1..paid atomic units. Execution is exact: the
transfer moves exactly the approved amount of the purchase's mint from the merchant
wallet (fee payer and transfer authority: a refund is never gasless, the server wallet
never pays one) to the recipient's token account, with the refund's memo. Every offline
check runs before the one-use execution claim is taken and the transaction sent; the
signature then goes into the payments replay ledger and the refund is marked processed
(and `refund.succeeded` queued) in one unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from solders.transaction import VersionedTransaction

from cedros_pay.core.assets import Asset, find_asset
from cedros_pay.core.clock import Clock, parse_rfc3339, to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import is_refund_id, is_solana_address, new_nonce_id, new_refund_id
from cedros_pay.core.models import (
    STRIPE_SIGNATURE_PREFIX,
    AdminNonce,
    NonceOutcome,
    PaymentTransaction,
    PendingWebhook,
    RefundQuote,
)
from cedros_pay.core.money import Money
from cedros_pay.integrations.solana.accounts import associated_token_address
from cedros_pay.integrations.solana.transaction import decode_transaction, inspect
from cedros_pay.integrations.solana.verifier import Requirement, VerificationResult, check
from cedros_pay.integrations.stripe.client import StripeEvent, StripeRefund
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.signed_requests import SignedRequest, SignedRequests
from cedros_pay.resolvers.webhooks import RefundEvent
from cedros_pay.storage.repos import (
    REFUND_APPROVED_AT,
    NonceRepo,
    PaymentRepo,
    RefundQuoteRepo,
    UnitOfWork,
    refund_status,
)
from cedros_pay.x402.schemas import ExactRequirement, PaymentPayload

# A request waits this long for an admin before cleanup may drop it (the stored
# `expires_at`); an approval's quote has its own, shorter expiry in the metadata.
REQUEST_HOLD = timedelta(days=30)
MAX_PURCHASE_ID = 256
MAX_REASON = 1024
MAX_METADATA = 32
_INTERNAL = "cedros."  # metadata keys the server keeps for itself
_APPROVED_AT = REFUND_APPROVED_AT
_APPROVED_BY = "cedros.approved_by"
_QUOTE_EXPIRES = "cedros.quote_expires_at"
_CLAIM = "cedros.claim"
_ATTEMPT = "cedros.attempt"  # the signature of the transaction sent for the approval
_ATTEMPT_AT = "cedros.attempt_at"
_PAYMENT_INTENT = "cedros.payment_intent"
_STRIPE_REFUND = "cedros.stripe_refund_id"
STRIPE_REFUND_EVENTS = ("charge.refunded", "refund.updated")
CLAIM_PURPOSE = "refund_execute"
# Longer than a sent transaction can still land (its blockhash lives about 60-90 s).
ATTEMPT_HOLD = timedelta(minutes=2)
# Outcomes after which a sent transaction may still land (a timeout, a lost RPC call).
UNDECIDED = frozenset({ErrorCode.TRANSACTION_NOT_CONFIRMED, ErrorCode.NETWORK_ERROR,
                       ErrorCode.RPC_ERROR})


class PaymentVerifier(Protocol):
    async def verify(self, payload: PaymentPayload, requirement: Requirement,
                     tx: VersionedTransaction | None = None) -> VerificationResult: ...


class MintPrograms(Protocol):
    async def program_of(self, mint: str) -> str: ...


class CardRefunds(Protocol):
    """Stripe's refunds (`integrations.stripe.client.StripeClient`)."""

    async def create_refund(self, *, payment_intent: str, amount: int, idempotency_key: str,
                            metadata: Mapping[str, str]) -> StripeRefund: ...


class RefundOutbox(Protocol):
    """Where `refund.succeeded` is queued (`webhooks.QueueingNotifier`): the row is built
    here and enqueued in the refund's unit of work; `wake` after commit."""

    def webhook_for_refund(self, event: RefundEvent) -> PendingWebhook | None: ...

    def wake(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundInput:
    """`POST /refunds/request`; `amount` as its decimal text (or an int / Decimal)."""

    original_purchase_id: str
    recipient_wallet: str
    amount: str | int | Decimal
    token: str
    reason: str = ""
    metadata: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """An approved refund: the x402 quote the merchant pays, or (a card purchase) the
    Stripe refund that was asked for (`quote` and `expires_at` None)."""

    refund: RefundQuote
    quote: dict[str, Any] | None
    expires_at: datetime | None
    stripe_refund_id: str = ""


@dataclass(frozen=True, slots=True)
class Executed:
    refund: RefundQuote
    result: VerificationResult
    paid_at: datetime


def status_of(refund: RefundQuote) -> str:
    return refund_status(refund)


def public_metadata(refund: RefundQuote) -> dict[str, str]:
    return {k: v for k, v in refund.metadata.items() if not k.startswith(_INTERNAL)}


def atomic_amount(amount: str | int | Decimal, asset: Asset) -> int:
    """Whole atomic units from decimal text: 0.89 USDC -> 890000 exactly; an amount finer
    than the token's smallest unit, not positive, or not a number is `invalid_amount`."""
    if isinstance(amount, bool):
        raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount must be a number",
                          {"field": "amount"})
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else amount)
    except (InvalidOperation, ValueError):
        raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount must be a decimal number",
                          {"field": "amount"}) from None
    if not value.is_finite() or not -30 <= value.adjusted() <= 30:
        raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount is out of range",
                          {"field": "amount"})
    scaled = value.scaleb(asset.decimals)
    if scaled != scaled.to_integral_value():
        raise CedrosError(ErrorCode.INVALID_AMOUNT,
                          f"amount has more than {asset.decimals} decimals for {asset.code}",
                          {"field": "amount"})
    atomic = int(scaled)
    if atomic <= 0:
        raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount must be greater than 0",
                          {"field": "amount"})
    return atomic


def refund_memo(refund_id: str) -> str:
    """The memo binding a refund transaction to its refund."""
    return f"refund:{refund_id}"


def _not_found(refund_id: str) -> CedrosError:
    return CedrosError(ErrorCode.REFUND_NOT_FOUND, f"refund {refund_id!r} not found",
                       {"refundId": refund_id})


def _check_refund_id(refund_id: str) -> None:
    if not is_refund_id(refund_id):
        raise CedrosError(ErrorCode.INVALID_FIELD, "refundId must be refund_ + 32 hex",
                          {"field": "refundId"})


class Refunds:
    """`payment_address` is the merchant wallet: it signs and pays every x402 refund."""

    def __init__(self, *, refunds: RefundQuoteRepo, payments: PaymentRepo, nonces: NonceRepo,
                 signed: SignedRequests, quotes: Quotes,
                 unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
                 verifier: PaymentVerifier, mint_programs: MintPrograms, clock: Clock,
                 quote_ttl: timedelta, outbox: RefundOutbox | None = None,
                 cards: CardRefunds | None = None) -> None:
        self._cards = cards
        self._refunds = refunds
        self._payments = payments
        self._nonces = nonces
        self._signed = signed
        self._quotes = quotes
        self._unit_of_work = unit_of_work
        self._verifier = verifier
        self._mint_programs = mint_programs
        self._clock = clock
        self._quote_ttl = quote_ttl
        self._outbox = outbox

    @property
    def _merchant(self) -> str:
        return self._quotes.terms.payment_address

    # --- the buyer ---------------------------------------------------------------------

    async def request(self, tenant: str, signed: SignedRequest,
                      inp: RefundInput) -> tuple[RefundQuote, bool]:
        """Open a refund, signed by the purchase's payer with
        `request-refund:<originalPurchaseId>`; returns it and whether it is new. A repeat
        answers the open refund; one for a processed refund is refused (spec 04)."""
        purchase_id = inp.original_purchase_id.strip()
        if not purchase_id or len(purchase_id) > MAX_PURCHASE_ID:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"originalPurchaseId must be 1..{MAX_PURCHASE_ID} characters",
                              {"field": "originalPurchaseId"})
        recipient = inp.recipient_wallet.strip()
        if not is_solana_address(recipient):
            raise CedrosError(ErrorCode.INVALID_WALLET,
                              "recipientWallet is not a Solana address",
                              {"field": "recipientWallet"})
        if len(inp.reason) > MAX_REASON:
            raise CedrosError(ErrorCode.INVALID_FIELD, f"reason exceeds {MAX_REASON} characters",
                              {"field": "reason"})
        metadata = dict(inp.metadata or {})
        if len(metadata) > MAX_METADATA or any(k.startswith(_INTERNAL) for k in metadata):
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"metadata: at most {MAX_METADATA} keys, none starting "
                              f"with {_INTERNAL!r}", {"field": "metadata"})
        signer = self._signed.signed_by(signed, "request-refund", purchase_id)
        purchase = await self._payments.get(tenant, purchase_id)
        if purchase is None:
            raise CedrosError(ErrorCode.TRANSACTION_NOT_FOUND,
                              "no recorded purchase with this id",
                              {"originalPurchaseId": purchase_id})
        if purchase.wallet != signer or purchase.metadata.get("resource_type") == "refund":
            raise CedrosError(ErrorCode.UNAUTHORIZED_REFUND_ISSUER,
                              "only the wallet that paid this purchase may ask for its refund")
        asset = self._purchase_asset(purchase, inp.token)
        amount = atomic_amount(inp.amount, asset)
        existing = await self._open_for(tenant, purchase, amount)
        if existing is not None:
            return existing, False
        mint, decimals = self._quotes.mint_for(Money(asset, amount))
        now = self._clock.now()
        refund = RefundQuote(
            id=new_refund_id(), tenant_id=tenant, original_purchase_id=purchase_id,
            recipient_wallet=recipient, amount_atomic=amount, asset=asset.code,
            token_mint=mint, token_decimals=decimals, reason=inp.reason, metadata=metadata,
            created_at=now, expires_at=now + REQUEST_HOLD)
        return await self._create(refund)

    async def _create(self, refund: RefundQuote) -> tuple[RefundQuote, bool]:
        """Store a new refund unless a racing request stored one for the purchase first:
        that one answers (a processed one refuses), as a repeat request would."""
        stored = await self._refunds.create_once(refund)
        if stored.id == refund.id:
            return refund, True
        if stored.is_processed:
            raise CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED,
                              details={"refundId": stored.id})
        return stored, False

    async def _open_for(self, tenant: str, purchase: PaymentTransaction,
                        amount: int) -> RefundQuote | None:
        """The refund already open for `purchase` (a repeat request answers it), once
        `amount` is known to be at most what was paid; a processed one refuses."""
        if amount > purchase.amount_atomic:
            raise CedrosError(ErrorCode.INVALID_AMOUNT, "amount is more than the purchase paid",
                              {"field": "amount", "maxAtomic": purchase.amount_atomic})
        existing = await self._refunds.get_by_original_purchase(tenant, purchase.signature)
        if existing is not None and existing.is_processed:
            raise CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED,
                              details={"refundId": existing.id})
        return existing

    @staticmethod
    def _purchase_asset(purchase: PaymentTransaction, token: str) -> Asset:
        asset = find_asset(purchase.asset)
        if asset is None or token.strip().upper() != asset.code.upper():
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"token must be the purchase's token ({purchase.asset})",
                              {"field": "token"})
        return asset

    # --- the admin ---------------------------------------------------------------------

    async def list_pending(self, tenant: str, signed: SignedRequest) -> list[RefundQuote]:
        """Unprocessed refunds, oldest first; `list-pending-refunds:<nonce>`."""
        await self._signed.admin(tenant, signed, action="list-pending-refunds", value=None,
                                 purpose="refund_list")
        return await self._refunds.list_pending(tenant)

    async def open_refunds(self, tenant: str, status: str | None = None) -> list[RefundQuote]:
        """Unprocessed refunds for a caller already known to be an admin (GraphQL),
        oldest first; `status` narrows to `pending` or `approved`."""
        if status not in (None, "pending", "approved"):
            raise CedrosError(ErrorCode.INVALID_FIELD, "status must be pending or approved",
                              {"field": "status"})
        rows = await self._refunds.list_pending(tenant)
        return [r for r in rows if status is None or status_of(r) == status]

    async def _lost(self, tenant: str, refund_id: str) -> CedrosError:
        """The answer for a step whose conditional write another step won: a refund denied
        meanwhile is not found; one approved or processed meanwhile was already decided."""
        refund = await self._refunds.get(tenant, refund_id)
        if refund is None:
            return _not_found(refund_id)
        return CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED,
                           "another admin decision on this refund came first",
                           {"refundId": refund_id, "status": status_of(refund)})

    async def _open(self, tenant: str, refund_id: str) -> RefundQuote:
        refund = await self._refunds.get(tenant, refund_id)
        if refund is None:
            raise _not_found(refund_id)
        if refund.is_processed:
            raise CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED, details={"refundId": refund_id})
        return refund

    async def approve(self, tenant: str, signed: SignedRequest, refund_id: str) -> Approval:
        """Quote the refund for the merchant to pay (`approve-refund:<refundId>`); approving
        again (an expired quote) quotes afresh (spec 19 RegenerateRefundQuote)."""
        _check_refund_id(refund_id)
        admin = await self._signed.admin(tenant, signed, action="approve-refund",
                                         value=refund_id, purpose="refund_approve")
        return await self.approve_as(tenant, admin, refund_id)

    async def approve_as(self, tenant: str, admin: str, refund_id: str) -> Approval:
        """`approve` for a caller already known to be the admin `admin` (GraphQL)."""
        _check_refund_id(refund_id)
        refund = await self._open(tenant, refund_id)
        if refund.original_purchase_id.startswith(STRIPE_SIGNATURE_PREFIX):
            return await self._approve_card(tenant, refund, admin)
        self._in_flight(refund)
        now = self._clock.now()
        expires = now + self._quote_ttl
        stamp = to_rfc3339(expires)
        kept = {k: v for k, v in refund.metadata.items() if k not in (_ATTEMPT, _ATTEMPT_AT)}
        approved = replace(refund, metadata={
            **kept, _APPROVED_AT: to_rfc3339(now), _APPROVED_BY: admin,
            _QUOTE_EXPIRES: stamp, _CLAIM: new_nonce_id()},
            expires_at=max(refund.expires_at, expires))
        await self._nonces.create(AdminNonce(
            id=approved.metadata[_CLAIM], tenant_id=tenant, purpose=CLAIM_PURPOSE,
            created_at=now, expires_at=expires))
        if not await self._refunds.transition(approved, status_of(refund)):
            raise await self._lost(tenant, refund_id)
        return Approval(approved, self.quote(approved, expires), expires)

    def quote(self, refund: RefundQuote, expires: datetime) -> dict[str, Any]:
        """The x402 (exact scheme) requirement: exactly the amount, to the recipient's
        token account for the purchase's mint, memo `refund:<id>`, the merchant paying."""
        terms = self._quotes.terms
        requirement = ExactRequirement(
            network=terms.network, asset=refund.token_mint, amount_atomic=refund.amount_atomic,
            pay_to=self._recipient_account(refund), max_timeout_seconds=max(
                1, int((expires - self._clock.now()).total_seconds())),
            fee_payer=self._merchant, memo=refund_memo(refund.id), url="",
            description=f"refund {refund.id}")
        entry = requirement.entry()
        entry["extra"] = {**entry["extra"], "recipientWallet": refund.recipient_wallet,
                          "refundId": refund.id, "resourceType": "refund",
                          "decimals": refund.token_decimals, "tokenSymbol": refund.asset}
        return entry

    @staticmethod
    def _recipient_account(refund: RefundQuote) -> str:
        return associated_token_address(refund.recipient_wallet, refund.token_mint)

    async def deny(self, tenant: str, signed: SignedRequest, refund_id: str) -> RefundQuote:
        """Refuse an open refund (`deny-refund:<refundId>`): it is removed (spec 19)."""
        _check_refund_id(refund_id)
        await self._signed.admin(tenant, signed, action="deny-refund", value=refund_id,
                                 purpose="refund_deny")
        return await self.deny_as(tenant, refund_id)

    async def deny_as(self, tenant: str, refund_id: str) -> RefundQuote:
        """`deny` for a caller already known to be an admin (GraphQL)."""
        _check_refund_id(refund_id)
        refund = await self._open(tenant, refund_id)
        self._in_flight(refund)
        if not await self._refunds.delete_if(tenant, refund_id, status_of(refund)):
            raise await self._lost(tenant, refund_id)
        return refund

    # --- execution ---------------------------------------------------------------------

    async def execute(self, tenant: str, payload: PaymentPayload) -> Executed:
        """Settle an approved refund's transaction (POST /verify, resourceType refund)."""
        refund_id = (payload.payload.resource or "").strip()
        if not is_refund_id(refund_id):
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "a refund payment's resource must be its refund id")
        refund = await self._open(tenant, refund_id)
        if _QUOTE_EXPIRES not in refund.metadata:  # card refunds are Stripe's to pay
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "the refund is not approved for an x402 transfer",
                              {"refundId": refund_id})
        expires = parse_rfc3339(refund.metadata[_QUOTE_EXPIRES])
        if self._clock.now() >= expires:
            raise CedrosError(ErrorCode.QUOTE_EXPIRED,
                              "the refund quote has expired; approve it again",
                              {"refundId": refund_id})
        tx = decode_transaction(payload.payload.transaction)
        facts = inspect(tx)
        requirement = Requirement(
            network=self._quotes.terms.network, mints=(refund.token_mint,),
            decimals=refund.token_decimals, amount_atomic=refund.amount_atomic,
            recipient_owner=refund.recipient_wallet, exact=True, memo=refund_memo(refund.id),
            token_program=await self._mint_programs.program_of(refund.token_mint))
        # Offline, before anything is claimed or sent: the transfer itself, then who pays.
        check(facts, requirement, recipient_hint=payload.payload.recipient_token_account)
        if facts.authority != self._merchant or facts.fee_payer != self._merchant:
            raise CedrosError(ErrorCode.UNAUTHORIZED_REFUND_ISSUER,
                              "a refund is signed and paid by the merchant wallet",
                              {"authority": facts.authority, "feePayer": facts.fee_payer})
        if await self._payments.has_been_processed(facts.signature):
            raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED,
                              details={"signature": facts.signature})
        if refund.metadata.get(_ATTEMPT) != facts.signature:  # else a resend of the winner
            outcome = await self._nonces.consume(tenant, refund.metadata[_CLAIM],
                                                 CLAIM_PURPOSE, self._clock.now())
            if outcome is not NonceOutcome.CONSUMED:
                raise CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED,
                                  "another transaction is executing this refund",
                                  {"refundId": refund_id})
            attempt = replace(refund, metadata={**refund.metadata, _ATTEMPT: facts.signature,
                                                _ATTEMPT_AT: to_rfc3339(self._clock.now())})
            if not await self._refunds.transition(attempt, status_of(refund)):
                raise await self._lost(tenant, refund_id)  # denied or re-quoted meanwhile
            refund = attempt
        try:
            result = await self._verifier.verify(payload, requirement, tx)
        except CedrosError as err:
            if err.code not in UNDECIDED:
                await self._give_back(tenant, refund, expires)
            raise
        return await self._record(tenant, refund, result)

    async def _give_back(self, tenant: str, refund: RefundQuote, expires: datetime) -> None:
        """A refused transaction cannot land: a fresh claim for the same approval, so the
        merchant may send a corrected one without approving again."""
        claim = new_nonce_id()
        await self._nonces.create(AdminNonce(id=claim, tenant_id=tenant, purpose=CLAIM_PURPOSE,
                                             created_at=self._clock.now(), expires_at=expires))
        metadata = {k: v for k, v in refund.metadata.items() if k not in (_ATTEMPT, _ATTEMPT_AT)}
        # Conditional: a refund denied meanwhile stays denied.
        await self._refunds.transition(replace(refund, metadata={**metadata, _CLAIM: claim}),
                                       status_of(refund))

    def _in_flight(self, refund: RefundQuote) -> None:
        """Refuse to re-quote or deny while a sent transaction may still land: a second
        approval's transaction could otherwise pay the refund twice."""
        at = refund.metadata.get(_ATTEMPT_AT)
        if at and self._clock.now() < parse_rfc3339(at) + ATTEMPT_HOLD:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "a transaction for this refund was sent and may still land; "
                              "try again later", {"refundId": refund.id,
                                                  "reason": "execution_in_flight",
                                                  "signature": refund.metadata[_ATTEMPT]})

    async def _record(self, tenant: str, refund: RefundQuote,
                      result: VerificationResult) -> Executed:
        now = self._clock.now()
        ledger = PaymentTransaction(
            signature=result.signature, tenant_id=tenant, resource_id=refund.id,
            wallet=result.wallet, amount_atomic=result.amount_atomic, asset=refund.asset,
            created_at=now, metadata={"resource_type": "refund", "network": result.network,
                                      "original_purchase_id": refund.original_purchase_id})
        event = RefundEvent(
            refund_id=refund.id, original_purchase_id=refund.original_purchase_id,
            recipient_wallet=refund.recipient_wallet, atomic_amount=refund.amount_atomic,
            token=refund.asset, processed_by=result.wallet, signature=result.signature,
            refunded_at=now, tenant_id=tenant, reason=refund.reason,
            metadata=public_metadata(refund), method="x402")
        item = self._outbox.webhook_for_refund(event) if self._outbox is not None else None
        async with self._unit_of_work() as uow:
            if not await uow.payments.record(ledger):
                raise CedrosError(ErrorCode.PAYMENT_ALREADY_USED,
                                  details={"signature": result.signature})
            if not await uow.refunds.mark_processed(tenant, refund.id, result.wallet,
                                                    result.signature, now):
                raise CedrosError(ErrorCode.REFUND_ALREADY_PROCESSED,
                                  details={"refundId": refund.id})
            if item is not None:
                await uow.webhooks.enqueue(item)
        if item is not None and self._outbox is not None:
            self._outbox.wake()
        done = replace(refund, processed_by=result.wallet, processed_at=now,
                       signature=result.signature)
        return Executed(done, result, now)

    # --- card purchases (Stripe) ---------------------------------------------------------

    async def open_card_refund(self, tenant: str, original_purchase_id: str,
                               amount: str | int | Decimal | None, reason: str
                               ) -> tuple[RefundQuote, bool]:
        """`POST /admin/refunds`, for an authenticated admin: open a refund of a card
        purchase (`stripe:{session_id}`; the buyer has no wallet to sign with). `amount`
        in the purchase's currency, the whole payment when None; one per purchase."""
        purchase_id = original_purchase_id.strip()
        if not purchase_id.startswith(STRIPE_SIGNATURE_PREFIX):
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              "originalPurchaseId must be a card purchase (stripe:{session})"
                              "; x402 refunds are requested by the payer",
                              {"field": "originalPurchaseId"})
        if len(reason) > MAX_REASON:
            raise CedrosError(ErrorCode.INVALID_FIELD, f"reason exceeds {MAX_REASON} characters",
                              {"field": "reason"})
        purchase = await self._payments.get(tenant, purchase_id)
        if purchase is None:
            raise CedrosError(ErrorCode.TRANSACTION_NOT_FOUND,
                              "no recorded purchase with this id",
                              {"originalPurchaseId": purchase_id})
        intent = purchase.metadata.get("payment_intent", "")
        asset = find_asset(purchase.asset)
        if asset is None or not intent:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              "the purchase has no Stripe payment intent to refund",
                              {"field": "originalPurchaseId"})
        cents = purchase.amount_atomic if amount is None else atomic_amount(amount, asset)
        existing = await self._open_for(tenant, purchase, cents)
        if existing is not None:
            return existing, False
        now = self._clock.now()
        refund = RefundQuote(
            id=new_refund_id(), tenant_id=tenant, original_purchase_id=purchase_id,
            recipient_wallet=purchase.wallet, amount_atomic=cents, asset=asset.code,
            token_decimals=asset.decimals, reason=reason, created_at=now,
            expires_at=now + REQUEST_HOLD, metadata={_PAYMENT_INTENT: intent})
        return await self._create(refund)

    async def _approve_card(self, tenant: str, refund: RefundQuote, admin: str) -> Approval:
        """Ask Stripe for the refund under a key derived from the refund id: when Stripe
        fails the refund stays approved and approving again asks again (the same key:
        one Stripe refund however often); processed once Stripe says it succeeded, here
        or by its webhook."""
        if self._cards is None:
            raise CedrosError(ErrorCode.STRIPE_ERROR, "Stripe is not configured here")
        now = self._clock.now()
        approved = replace(refund, metadata={**refund.metadata, _APPROVED_AT: to_rfc3339(now),
                                             _APPROVED_BY: admin})
        if not await self._refunds.transition(approved, status_of(refund)):
            raise await self._lost(tenant, refund.id)
        created = await self._cards.create_refund(
            payment_intent=refund.metadata.get(_PAYMENT_INTENT, ""),
            amount=refund.amount_atomic, idempotency_key=f"cedros-refund-{refund.id}",
            metadata={"refund_id": refund.id, "tenant_id": tenant})
        approved = replace(approved, metadata={**approved.metadata, _STRIPE_REFUND: created.id})
        await self._refunds.transition(approved, "approved")  # a denial meanwhile stands
        if created.status == "succeeded":
            approved = await self._card_refunded(tenant, approved, created.id, admin) or approved
        return Approval(approved, None, None, stripe_refund_id=created.id)

    async def _card_refunded(self, tenant: str, refund: RefundQuote, stripe_refund_id: str,
                             processed_by: str) -> RefundQuote | None:
        """Mark a card refund processed and queue `refund.succeeded`, once; None when it
        was processed already (the webhook and the approval both report it)."""
        now = self._clock.now()
        event = RefundEvent(
            refund_id=refund.id, original_purchase_id=refund.original_purchase_id,
            recipient_wallet=refund.recipient_wallet, atomic_amount=refund.amount_atomic,
            token=refund.asset, processed_by=processed_by, signature=stripe_refund_id,
            refunded_at=now, tenant_id=tenant, reason=refund.reason,
            metadata=public_metadata(refund), method="stripe")
        item = self._outbox.webhook_for_refund(event) if self._outbox is not None else None
        async with self._unit_of_work() as uow:
            if not await uow.refunds.mark_processed(tenant, refund.id, processed_by,
                                                    stripe_refund_id, now):
                return None
            if item is not None:
                await uow.webhooks.enqueue(item)
        if item is not None and self._outbox is not None:
            self._outbox.wake()
        return replace(refund, processed_by=processed_by, processed_at=now,
                       signature=stripe_refund_id)

    def stripe_handlers(self) -> dict[str, Callable[[StripeEvent], Awaitable[None]]]:
        """The Stripe webhook handlers card refunds add (`StripeEvents(extra=...)`)."""
        return dict.fromkeys(STRIPE_REFUND_EVENTS, self.stripe_refund_event)

    async def stripe_refund_event(self, event: StripeEvent) -> None:
        """`charge.refunded` (the charge and its refunds) or `refund.updated` (one refund):
        each succeeded refund that names one of ours completes it, once."""
        obj = event.object
        listed = obj.get("refunds")
        found = listed.get("data") if isinstance(listed, Mapping) else None
        items = found if isinstance(found, list) else [obj] if obj.get("object") == "refund" \
            else []
        for item in items:
            if not isinstance(item, Mapping) or item.get("status") != "succeeded":
                continue
            meta = item.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            refund_id = str(meta.get("refund_id") or "")
            tenant = str(meta.get("tenant_id") or "default")
            if not is_refund_id(refund_id):
                continue
            refund = await self._refunds.get(tenant, refund_id)
            if refund is None or refund.is_processed:
                continue
            await self._card_refunded(tenant, refund, str(item.get("id") or ""), "stripe")
