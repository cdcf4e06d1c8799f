"""The x402 verifier (spec 22 "Core Verification"): is this transaction the payment that was
asked for, and did it land?

It knows nothing of products, carts, coupons or storage: a resolver turns a quote into a
`Requirement` and records the result. Three layers, usable apart:

- `check(facts, requirement)`: pure rules over `transaction.TransferFacts`;
- `SolanaVerifier.prepare(payload, requirement)`: decode + inspect + check, no I/O;
- `SolanaVerifier.settle(tx, facts)`: submit, then wait for the configured commitment.

`verify` = prepare + settle. A resolver that wants to claim the signature *before* the
transaction is sent (replay protection is its job) calls `prepare`, claims
`prepared.facts.signature`, then `settle`.

Check order, and why: the token (program, mint, decimals) first, because the recipient's
ATA is derived from it (a wrong mint is `invalid_token_mint` whatever its destination);
then recipient (the payload's hint, then the derived account), amount, memo; signatures
last, as the only check that costs real CPU (Ed25519). Every refusal is a CedrosError
with `details["reason"]`.

Amounts are compared in atomic units (DESIGN §3/§7): a minimum requirement (single
purchase) accepts `paid >= required`, an exact one (cart, refund) only `paid == required`
(`amount_mismatch` on either side).

Gasless (server pays the fee) goes through `cosigner`: when the only missing signature is
the fee payer's and a `Cosigner` vouches for that key, `verify` has it sign before
settling. Without one, such a transaction is `invalid_signature` (reason
`gasless_unavailable`). The real cosigner (`cosigner.WalletCosigner`) refuses transactions
in which the server wallet does anything but pay the fee.

Optional seams: `tx_queue` paces sends (`tx_queue.TxQueue`); `account_creator` creates the
merchant's missing token account and the send is retried once.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal, NoReturn, Protocol

import httpx
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction

from cedros_pay.config.models import derive_ws_url
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.circuit_breaker import DEFAULTS, SOLANA_RPC, CircuitBreaker
from cedros_pay.integrations.solana.confirm import (
    ConfirmationSettings,
    Confirmer,
    SignatureWatcher,
)
from cedros_pay.integrations.solana.failures import (
    is_already_processed,
    on_chain_failure,
    send_failure,
)
from cedros_pay.integrations.solana.rpc import (
    COMMITMENTS,
    Breaker,
    RetryPolicy,
    RpcCallError,
    RpcHook,
    SolanaRpc,
)
from cedros_pay.integrations.solana.transaction import (
    TransferFacts,
    decode_transaction,
    inspect,
)
from cedros_pay.integrations.solana.tx_queue import TxQueue
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.schemas import PaymentPayload

log = logging.getLogger("cedros_pay.solana.verifier")

MAX_U64 = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a payment must be. Built by a resolver from a quote (spec 22 `Requirement`).

    The recipient is `recipient_token_account`, or the associated token account of
    `recipient_owner` for the paid mint (either matches when both are given). `memo` is
    the exact text a Memo instruction must carry, or a compiled pattern it must fully
    match (`x402.memo.memo_matcher`, for templates with a per-quote nonce).
    """

    network: str
    mints: tuple[str, ...]  # allowed mints (devnet USDC besides the configured one, §7)
    decimals: int
    amount_atomic: int
    recipient_owner: str | None = None
    recipient_token_account: str | None = None
    exact: bool = False  # carts and refunds: paid == required; else paid >= required
    memo: str | re.Pattern[str] | None = None
    token_program: str | None = None  # pin Token or Token-2022; None accepts either

    def __post_init__(self) -> None:
        if isinstance(self.mints, str):
            object.__setattr__(self, "mints", (self.mints,))
        problems = []
        if not self.mints:
            problems.append("no mint")
        if not self.recipient_owner and not self.recipient_token_account:
            problems.append("no recipient")
        if isinstance(self.amount_atomic, bool) or not 0 < self.amount_atomic <= MAX_U64:
            problems.append("amount must be 1..2^64-1 atomic units")
        if not 0 <= self.decimals <= 255:
            problems.append("decimals must be 0..255")
        if problems:
            raise CedrosError(ErrorCode.CONFIG_ERROR,
                              "invalid payment requirement: " + ", ".join(problems))


@dataclass(frozen=True, slots=True)
class PreparedPayment:
    """A payment that passed every offline check, ready to settle."""

    tx: VersionedTransaction
    facts: TransferFacts
    needs_cosign: bool = False


@dataclass(frozen=True, slots=True)
class Settlement:
    signature: str
    slot: int | None
    already_processed: bool  # the node had it already: an idempotent re-send
    confirmed_via: Literal["websocket", "polling"]
    submit_ms: float  # subscribe + send, retries included
    confirm_ms: float  # the wait for the commitment


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """A verified, landed payment (spec 22 `VerificationResult`, atomic amounts)."""

    wallet: str  # the transfer authority: who paid
    amount_atomic: int
    mint: str
    decimals: int
    recipient_token_account: str
    signature: str
    slot: int | None
    fee_payer: str
    memos: tuple[str, ...]
    network: str
    already_processed: bool
    check_ms: float  # decode + inspect + check (server CPU)
    submit_ms: float
    confirm_ms: float
    total_ms: float


class AccountCreator(Protocol):
    """Auto token account creation seam (`gasless.TokenAccountCreator`)."""

    async def ensure(self, destination: str, mint: str, token_program: str) -> bool: ...


class Cosigner(Protocol):
    """Gasless seam: signs as fee payer for the server wallets it holds."""

    def holds(self, fee_payer: str) -> bool: ...

    async def cosign(self, tx: VersionedTransaction,
                     facts: TransferFacts | None = None) -> VersionedTransaction:
        """`tx` signed as fee payer; `facts` is `inspect(tx)`, passed so it is not redone."""
        ...


# --- the rules ---------------------------------------------------------------------------


def check(facts: TransferFacts, requirement: Requirement, *,
          require_all_signatures: bool = True, recipient_hint: str | None = None) -> None:
    """Raise the spec code for the first way `facts` fails `requirement` (order: module doc).
    `recipient_hint` is the destination the payload says the transfer pays (v0's
    `recipientTokenAccount`): checked with the recipient, after the token it derives from."""
    if requirement.token_program and facts.token_program != requirement.token_program:
        _refuse(ErrorCode.INVALID_TOKEN_PROGRAM, Reason.TOKEN_PROGRAM_MISMATCH,
                "the transfer uses another token program than the quote's",
                expected=requirement.token_program, got=facts.token_program)
    if facts.mint not in requirement.mints:
        _refuse(ErrorCode.INVALID_TOKEN_MINT, Reason.MINT_NOT_ALLOWED,
                "the transfer moves a token the quote does not accept",
                expected=list(requirement.mints), got=facts.mint)
    if facts.decimals != requirement.decimals:
        # The decimals byte is the client's statement of the amount's scale; a mismatch
        # would fail on chain (MintDecimalsMismatch), so it is a malformed transaction.
        _refuse(ErrorCode.INVALID_TRANSACTION, Reason.DECIMALS_MISMATCH,
                f"the transfer declares {facts.decimals} decimals; the token has "
                f"{requirement.decimals}", expected=requirement.decimals, got=facts.decimals)
    if recipient_hint is not None and recipient_hint != facts.destination:
        _refuse(ErrorCode.INVALID_RECIPIENT, Reason.RECIPIENT_HINT_MISMATCH,
                "payload.recipientTokenAccount is not the transfer's destination")
    if facts.destination not in _recipients(requirement, facts):
        _refuse(ErrorCode.INVALID_RECIPIENT, Reason.RECIPIENT_MISMATCH,
                "the transfer does not pay the merchant's token account",
                got=facts.destination)
    if requirement.exact and facts.amount != requirement.amount_atomic:
        _refuse(ErrorCode.AMOUNT_MISMATCH, Reason.AMOUNT_NOT_EXACT,
                f"paid {facts.amount} atomic units; exactly {requirement.amount_atomic} "
                "are required", requiredAtomic=requirement.amount_atomic,
                paidAtomic=facts.amount)
    if facts.amount < requirement.amount_atomic:
        _refuse(ErrorCode.AMOUNT_BELOW_MINIMUM, Reason.AMOUNT_BELOW_MINIMUM,
                f"paid {facts.amount} atomic units; at least {requirement.amount_atomic} "
                "are required", requiredAtomic=requirement.amount_atomic,
                paidAtomic=facts.amount)
    if requirement.memo is not None:
        if not facts.memos:
            _refuse(ErrorCode.MISSING_MEMO, Reason.MEMO_MISSING,
                    "the quote requires a memo and the transaction has none")
        if not any(_memo_matches(requirement.memo, m) for m in facts.memos):
            _refuse(ErrorCode.INVALID_MEMO, Reason.MEMO_MISMATCH,
                    "the transaction's memo is not the one the quote requires")
    _check_signatures(facts, require_all=require_all_signatures)


def _check_signatures(facts: TransferFacts, *, require_all: bool) -> None:
    if facts.invalid_signers:
        _refuse(ErrorCode.INVALID_SIGNATURE, Reason.SIGNATURE_INVALID,
                "a transaction signature does not verify", signers=list(facts.invalid_signers))
    if not facts.authority_signed:
        _refuse(ErrorCode.INVALID_SIGNATURE, Reason.AUTHORITY_NOT_SIGNER,
                "the transfer authority has not signed the transaction")
    if require_all and facts.missing_signers:
        _refuse(ErrorCode.INVALID_SIGNATURE, Reason.SIGNATURE_MISSING,
                "the transaction is not fully signed", signers=list(facts.missing_signers))


def _recipients(requirement: Requirement, facts: TransferFacts) -> frozenset[str]:
    found = set()
    if requirement.recipient_token_account:
        found.add(requirement.recipient_token_account)
    if requirement.recipient_owner:
        program = requirement.token_program or facts.token_program
        found.add(_ata(requirement.recipient_owner, facts.mint, program))
    return frozenset(found)


@lru_cache(maxsize=1024)
def _ata(owner: str, mint: str, program: str) -> str:
    try:
        return str(get_associated_token_address(Pubkey.from_string(owner),
                                                Pubkey.from_string(mint),
                                                Pubkey.from_string(program)))
    except ValueError:
        raise CedrosError(ErrorCode.CONFIG_ERROR,
                          f"recipient owner {owner!r} is not a Solana address") from None


def _memo_matches(expected: str | re.Pattern[str], memo: str) -> bool:
    return memo == expected if isinstance(expected, str) else bool(expected.fullmatch(memo))


def _refuse(code: ErrorCode, reason: Reason, message: str, **details: Any) -> NoReturn:
    raise CedrosError(code, message, {"reason": reason.value, **details})


# --- the verifier ------------------------------------------------------------------------


def parse_commitment(value: str | None) -> str:
    """spec 22: empty -> confirmed; case-insensitive; unknown -> finalized (the safe end)."""
    text = (value or "").strip().lower()
    if not text:
        return "confirmed"
    if text == "finalised":
        return "finalized"
    return text if text in COMMITMENTS else "finalized"


class SolanaVerifier:
    """Verifies and settles x402 payments against one Solana RPC endpoint.

    `rpc` is the client for `rpc_url` that the rest of the server uses (shared: its
    breaker, its httpx client; closing it is its owner's job). Without one, the verifier
    builds its own from `http`, `retry`, `breaker`, `rpc_hook` and `request_timeout`.
    """

    def __init__(
        self,
        rpc_url: str,
        ws_url: str | None = None,
        *,
        network: str,
        commitment: str = "confirmed",
        skip_preflight: bool = False,
        rpc: SolanaRpc | None = None,
        http: httpx.AsyncClient | None = None,
        use_websocket: bool = True,
        confirmation: ConfirmationSettings | None = None,
        retry: RetryPolicy | None = None,
        breaker: Breaker | None = None,
        rpc_hook: RpcHook | None = None,
        request_timeout: float = 15.0,
        cosigner: Cosigner | None = None,
        tx_queue: TxQueue | None = None,
        account_creator: AccountCreator | None = None,
    ) -> None:
        self.network = network
        self.commitment = parse_commitment(commitment)
        self.skip_preflight = skip_preflight
        self.cosigner = cosigner
        settings = confirmation or ConfirmationSettings()
        self._owns_rpc = rpc is None
        if rpc is None:
            if breaker is None:
                breaker = CircuitBreaker(SOLANA_RPC, DEFAULTS[SOLANA_RPC])
            rpc = SolanaRpc(rpc_url, http=http, retry=retry, breaker=breaker,
                            request_timeout=request_timeout, hook=rpc_hook)
        self.rpc = rpc
        # Sends through the queue must not retry 429s themselves: the queue re-queues them
        # at the front with its own backoff (spec 22 "Rate Limit Handling").
        self.tx_queue = tx_queue
        self.account_creator = account_creator
        self._queue_retry = replace(rpc.retry, max_retries=0)
        watcher = None
        if use_websocket:
            watcher = SignatureWatcher(ws_url or derive_ws_url(rpc.url) or rpc.url,
                                       connect_timeout=settings.ws_connect_timeout,
                                       retry_after=settings.ws_retry_after)
        self.watcher = watcher
        self.confirmer = Confirmer(self.rpc, watcher, self.commitment, settings)

    async def aclose(self) -> None:
        if self.watcher is not None:
            await self.watcher.aclose()
        if self._owns_rpc:
            await self.rpc.aclose()

    async def health(self) -> bool:
        """The RPC node answers `getHealth` with ok (one attempt, no retries)."""
        return await self.rpc.health()

    # --- verification ---------------------------------------------------------------

    async def verify(self, payload: PaymentPayload, requirement: Requirement,
                     tx: VersionedTransaction | None = None) -> VerificationResult:
        """Check the payment offline, submit it, wait for the commitment (spec 22). `tx`
        is the payload's transaction when the caller has decoded it already."""
        started = time.perf_counter()
        prepared = self.prepare(payload, requirement, tx)
        tx, facts = prepared.tx, prepared.facts
        if prepared.needs_cosign:
            tx, facts = await self._cosign(tx, facts, requirement)
        checked = time.perf_counter()
        settlement = await self.settle(tx, facts)
        total = time.perf_counter() - started
        return VerificationResult(
            wallet=facts.authority, amount_atomic=facts.amount, mint=facts.mint,
            decimals=facts.decimals, recipient_token_account=facts.destination,
            signature=settlement.signature, slot=settlement.slot, fee_payer=facts.fee_payer,
            memos=facts.memos, network=self.network,
            already_processed=settlement.already_processed,
            check_ms=(checked - started) * 1000, submit_ms=settlement.submit_ms,
            confirm_ms=settlement.confirm_ms, total_ms=total * 1000)

    def prepare(self, payload: PaymentPayload, requirement: Requirement,
                tx: VersionedTransaction | None = None) -> PreparedPayment:
        """Every offline check: network, payload hints, transaction shape, requirement."""
        if requirement.network != self.network:
            raise CedrosError(ErrorCode.CONFIG_ERROR,
                              f"requirement for {requirement.network} given to the "
                              f"{self.network} verifier")
        if payload.network.strip().lower() != requirement.network.lower():
            _refuse(ErrorCode.INVALID_PAYMENT_PROOF, Reason.NETWORK_MISMATCH,
                    f"the payment is for {payload.network!r}; this server takes "
                    f"{requirement.network!r}", expected=requirement.network,
                    got=payload.network)
        body = payload.payload
        if tx is None:
            tx = decode_transaction(body.transaction)
        facts = inspect(tx)
        if body.signature is not None and body.signature != facts.signature:
            _refuse(ErrorCode.INVALID_SIGNATURE, Reason.SIGNATURE_MISMATCH,
                    "payload.signature is not the transaction's signature")
        if body.fee_payer is not None and body.fee_payer != facts.fee_payer:
            _refuse(ErrorCode.INVALID_TRANSACTION, Reason.FEE_PAYER_MISMATCH,
                    "payload.feePayer is not the transaction's fee payer")
        needs_cosign = self._needs_cosign(facts)
        hint = body.recipient_token_account
        if (facts.missing_signers == (facts.fee_payer,) and facts.fee_payer != facts.authority
                and not needs_cosign):
            check(facts, requirement, require_all_signatures=False, recipient_hint=hint)
            _refuse(ErrorCode.INVALID_SIGNATURE, Reason.GASLESS_UNAVAILABLE,
                    "the fee payer has not signed, and this server does not pay fees "
                    "(gasless) for it", feePayer=facts.fee_payer)
        check(facts, requirement, require_all_signatures=not needs_cosign, recipient_hint=hint)
        return PreparedPayment(tx, facts, needs_cosign)

    def _needs_cosign(self, facts: TransferFacts) -> bool:
        return (self.cosigner is not None and facts.missing_signers == (facts.fee_payer,)
                and facts.fee_payer != facts.authority and self.cosigner.holds(facts.fee_payer))

    async def _cosign(self, tx: VersionedTransaction, facts: TransferFacts,
                      requirement: Requirement) -> tuple[VersionedTransaction, TransferFacts]:
        """The co-signed transaction and its facts. When only the fee payer's empty slot
        was filled (what a cosigner does), every other fact stands as checked: the new
        id is that signature, nothing is missing. Anything more is judged afresh."""
        assert self.cosigner is not None
        signed = await self.cosigner.cosign(tx, facts)
        if (signed.signatures[1:] == tx.signatures[1:]
                and bytes(signed.message) == bytes(tx.message)):
            return signed, replace(facts, signature=str(signed.signatures[0]),
                                   missing_signers=())
        facts = inspect(signed)
        check(facts, requirement)
        return signed, facts

    async def settle(self, tx: VersionedTransaction, facts: TransferFacts) -> Settlement:
        """Submit (idempotently) and wait for the configured commitment.

        Subscribes before sending so the confirmation cannot be missed; "already
        processed" is success (the same bytes landed before); a landed failure raises
        its specific code (module `failures`).
        """
        started = time.perf_counter()
        signature = facts.signature
        # Only a fee payer this server signs for makes a SOL shortage the server's problem.
        gasless = self.cosigner is not None and self.cosigner.holds(facts.fee_payer)
        subscription = await self.confirmer.subscribe(signature)
        try:
            already = await self._send_creating_account(bytes(tx), facts, gasless=gasless)
        except BaseException:
            if subscription is not None:
                subscription.cancel()
            raise
        if already and subscription is not None:
            subscription.cancel()  # a node may never notify for an old signature
            subscription = None
        sent = time.perf_counter()
        confirmation = await self.confirmer.wait(signature, facts.blockhash, subscription)
        if confirmation.err is not None:
            raise on_chain_failure(confirmation.err, signature=signature,
                                   transfer_index=facts.instruction_index, gasless=gasless)
        done = time.perf_counter()
        return Settlement(signature=signature, slot=confirmation.slot, already_processed=already,
                          confirmed_via=confirmation.via, submit_ms=(sent - started) * 1000,
                          confirm_ms=(done - sent) * 1000)

    async def _send_creating_account(self, raw: bytes, facts: TransferFacts, *,
                                     gasless: bool) -> bool:
        """`_send`; when the recipient's token account is missing and auto-creation is on,
        create it and send once more (spec 22 "Auto Token Account Creation").

        Without preflight the node accepts the transaction and it fails on chain, spending
        its signature, so then the account is checked (and created) before sending."""
        if self.skip_preflight and self.account_creator is not None:
            await self.account_creator.ensure(facts.destination, facts.mint, facts.token_program)
        try:
            return await self._send(raw, facts, gasless=gasless)
        except CedrosError as exc:
            creator = self.account_creator
            if exc.code is not ErrorCode.MISSING_TOKEN_ACCOUNT or creator is None:
                raise
            if not await creator.ensure(facts.destination, facts.mint, facts.token_program):
                raise
        try:
            return await self._send(raw, facts, gasless=gasless)
        except CedrosError as again:
            raise CedrosError(ErrorCode.SEND_FAILED_AFTER_ACCOUNT_CREATION, again.message,
                              {**(again.details or {}), "cause": again.code.value}) from None

    async def _send(self, raw: bytes, facts: TransferFacts, *, gasless: bool) -> bool:
        """True when the node already had the transaction."""
        preflight = "confirmed" if self.commitment == "finalized" else self.commitment
        try:
            if self.tx_queue is not None:
                sent = await self.tx_queue.submit(lambda: self.rpc.send_transaction(
                    raw, skip_preflight=self.skip_preflight, preflight_commitment=preflight,
                    retry=self._queue_retry), id=facts.signature[:8])
            else:
                sent = await self.rpc.send_transaction(raw, skip_preflight=self.skip_preflight,
                                                       preflight_commitment=preflight)
        except RpcCallError as exc:
            if is_already_processed(exc):
                log.info("payment %s... was already processed; treating as sent",
                         facts.signature[:8])
                return True
            raise send_failure(exc, signature=facts.signature,
                               transfer_index=facts.instruction_index, gasless=gasless) from None
        if sent != facts.signature:
            log.warning("node reported signature %s... for %s...", sent[:8], facts.signature[:8])
        return False
