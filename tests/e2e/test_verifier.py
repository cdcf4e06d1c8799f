"""The x402 verifier against the sandbox chain: real JSON-RPC, real WebSocket, real SPL
token program (LiteSVM). Nothing about the chain is mocked; RPC faults are the sandbox's
own injected HTTP failures."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.confirm import ConfirmationSettings
from cedros_pay.integrations.solana.rpc import RetryPolicy
from cedros_pay.integrations.solana.transaction import TransferFacts
from cedros_pay.integrations.solana.verifier import (
    Requirement,
    SolanaVerifier,
    VerificationResult,
)
from cedros_pay.sandbox import spl
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.x402.cedros_v0 import parse_payment_header
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.schemas import PaymentPayload

FAST = ConfirmationSettings(timeout=3.0, poll_interval=0.02, ws_backstop_interval=0.2,
                            blockhash_window=2.0, ws_connect_timeout=1.0, ws_retry_after=30.0)
FAST_RETRY = RetryPolicy(base_delay=0.005, max_delay=0.02)
MEMO = "cedros:article-1:aBc1DeFg"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as running:
        yield running


def make_verifier(sb: RunningSandbox, **options: Any) -> SolanaVerifier:
    settings: dict[str, Any] = {"network": "devnet", "confirmation": FAST,
                                "retry": FAST_RETRY}
    settings.update(options)
    ws_url = settings.pop("ws_url", sb.ws_url)
    return SolanaVerifier(sb.url, ws_url, **settings)


@pytest.fixture
async def verifier(sandbox: RunningSandbox) -> AsyncIterator[SolanaVerifier]:
    v = make_verifier(sandbox)
    yield v
    await v.aclose()


def requirement(sb: RunningSandbox, amount: int = 1_000_000, **overrides: Any) -> Requirement:
    values: dict[str, Any] = {
        "network": "devnet", "mints": (str(sb.devnet.usdc_mint),), "decimals": 6,
        "amount_atomic": amount, "recipient_owner": str(sb.wallets.merchant.pubkey())}
    values.update(overrides)
    return Requirement(**values)


def header(tx: VersionedTransaction, **payload: Any) -> PaymentPayload:
    """The X-PAYMENT header an x402 client would send, parsed as the server parses it."""
    doc = {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
           "payload": {"transaction": base64.b64encode(bytes(tx)).decode(),
                       "signature": str(tx.signatures[0]), "resource": "article-1",
                       "resourceType": "regular", **payload}}
    return parse_payment_header(base64.b64encode(json.dumps(doc).encode()).decode())


async def blockhash(v: SolanaVerifier) -> Hash:
    return Hash.from_string((await v.rpc.latest_blockhash())[0])


def merchant_balance(sb: RunningSandbox) -> int:
    return sb.chain.token_balance(sb.wallets.merchant.pubkey(), sb.devnet.usdc_mint)


async def refused(v: SolanaVerifier, payment: PaymentPayload, req: Requirement) -> CedrosError:
    with pytest.raises(CedrosError) as caught:
        await v.verify(payment, req)
    return caught.value


async def on_chain(v: SolanaVerifier, signature: str) -> dict[str, Any] | None:
    """The chain's own record of a signature (history searched), None when it never landed."""
    [status] = await v.rpc.signature_statuses([signature], search_history=True)
    return status


def landed(status: dict[str, Any] | None) -> bool:
    """Succeeded and reached the verifier's commitment (`confirmed`) or beyond."""
    return (status is not None and status.get("err") is None
            and status.get("confirmationStatus") in ("confirmed", "finalized"))


def reason_of(err: CedrosError) -> str:
    assert err.details is not None
    return str(err.details["reason"])


def custom_transfer(sb: RunningSandbox, amount: int, bh: Hash, *, mint: Pubkey | None = None,
                    decimals: int = 6, memo: str | None = None) -> VersionedTransaction:
    payer = sb.wallets.payer
    mint = mint or sb.devnet.usdc_mint
    instructions: list[Instruction] = [spl.transfer_checked(
        spl.associated_token_address(payer.pubkey(), mint),
        mint, spl.associated_token_address(sb.wallets.merchant.pubkey(), mint),
        payer.pubkey(), amount, decimals)]
    if memo is not None:
        instructions.append(spl.memo(memo))
    return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), instructions, [], bh),
                                [payer])


# --- success ------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["v0", "legacy"])
async def test_user_paid_payment_settles_and_reports_the_payer(
        sandbox: RunningSandbox, verifier: SolanaVerifier, legacy: bool) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier),
                       memo=MEMO, legacy=legacy)
    result = await verifier.verify(header(tx), requirement(sandbox, memo=MEMO))
    assert isinstance(result, VerificationResult)
    assert result.wallet == str(sandbox.wallets.payer.pubkey())
    assert result.fee_payer == result.wallet
    assert result.amount_atomic == 1_000_000
    assert result.mint == str(sandbox.devnet.usdc_mint)
    assert result.recipient_token_account == str(sandbox.devnet.merchant_usdc)
    assert result.signature == str(tx.signatures[0])
    assert result.memos == (MEMO,)
    assert result.network == "devnet" and not result.already_processed
    assert result.slot == sandbox.chain.slot
    assert merchant_balance(sandbox) == 1_000_000
    status = await on_chain(verifier, result.signature)
    assert landed(status) and status is not None and status["slot"] == result.slot


async def test_confirmation_arrives_over_the_websocket(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    settlement = await verifier.settle(tx, verifier.prepare(header(tx),
                                                            requirement(sandbox)).facts)
    assert settlement.confirmed_via == "websocket"
    assert verifier.watcher is not None and verifier.watcher.connects == 1
    tx2 = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    await verifier.verify(header(tx2), requirement(sandbox))
    assert verifier.watcher.connects == 1  # one connection serves every payment


async def test_minimum_requirement_accepts_exact_and_over_payment(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    bh = await blockhash(verifier)
    for amount in (1_000_000, 1_500_000):
        result = await verifier.verify(header(usdc_transfer(sandbox.devnet, amount,
                                                            blockhash=bh)),
                                       requirement(sandbox))
        assert result.amount_atomic == amount
    assert merchant_balance(sandbox) == 2_500_000


async def test_exact_requirement_accepts_the_exact_amount(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 2_000_000, blockhash=await blockhash(verifier))
    result = await verifier.verify(header(tx, resourceType="cart"),
                                   requirement(sandbox, 2_000_000, exact=True))
    assert result.amount_atomic == 2_000_000


async def test_token_2022_payment_settles_with_the_program_pinned() -> None:
    async with running_devnet_sandbox(token_program=spl.TOKEN_2022_PROGRAM_ID) as sb:
        v = make_verifier(sb)
        try:
            tx = usdc_transfer(sb.devnet, 3_000_000, blockhash=await blockhash(v))
            result = await v.verify(header(tx), requirement(
                sb, 3_000_000, token_program=str(spl.TOKEN_2022_PROGRAM_ID)))
            assert result.recipient_token_account == str(sb.devnet.merchant_usdc)
        finally:
            await v.aclose()


async def test_recipient_may_be_given_as_the_token_account(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    req = requirement(sandbox, recipient_owner=None,
                      recipient_token_account=str(sandbox.devnet.merchant_usdc))
    await verifier.verify(header(tx, recipientTokenAccount=str(sandbox.devnet.merchant_usdc)),
                          req)


# --- refused before anything is sent --------------------------------------------------------


async def test_offline_refusals_send_nothing(sandbox: RunningSandbox,
                                             verifier: SolanaVerifier) -> None:
    bh = await blockhash(verifier)
    devnet = sandbox.devnet
    other_mint = sandbox.chain.create_mint(Keypair().pubkey(), 6)
    sandbox.chain.create_token_account(sandbox.wallets.merchant.pubkey(), other_mint)
    sandbox.chain.mint_to(sandbox.wallets.payer.pubkey(), other_mint, 10**9)
    stranger = Keypair().pubkey()
    unsigned = VersionedTransaction.populate(
        usdc_transfer(devnet, 1_000_000, blockhash=bh).message, [Signature.default()])
    cases: list[tuple[str, VersionedTransaction, Requirement, ErrorCode, Reason]] = [
        ("under-payment", usdc_transfer(devnet, 999_999, blockhash=bh), requirement(sandbox),
         ErrorCode.AMOUNT_BELOW_MINIMUM, Reason.AMOUNT_BELOW_MINIMUM),
        ("over-payment of an exact amount", usdc_transfer(devnet, 1_000_001, blockhash=bh),
         requirement(sandbox, exact=True), ErrorCode.AMOUNT_MISMATCH,
         Reason.AMOUNT_NOT_EXACT),
        ("wrong mint", custom_transfer(sandbox, 1_000_000, bh, mint=other_mint),
         requirement(sandbox), ErrorCode.INVALID_TOKEN_MINT, Reason.MINT_NOT_ALLOWED),
        ("wrong recipient", usdc_transfer(devnet, 1_000_000, blockhash=bh,
                                          recipient_owner=stranger),
         requirement(sandbox), ErrorCode.INVALID_RECIPIENT, Reason.RECIPIENT_MISMATCH),
        ("wrong decimals", custom_transfer(sandbox, 1_000_000, bh, decimals=9),
         requirement(sandbox), ErrorCode.INVALID_TRANSACTION, Reason.DECIMALS_MISMATCH),
        ("missing memo", usdc_transfer(devnet, 1_000_000, blockhash=bh),
         requirement(sandbox, memo=MEMO), ErrorCode.MISSING_MEMO, Reason.MEMO_MISSING),
        ("wrong memo", usdc_transfer(devnet, 1_000_000, blockhash=bh, memo="cedros:other"),
         requirement(sandbox, memo=MEMO), ErrorCode.INVALID_MEMO, Reason.MEMO_MISMATCH),
        ("unsigned", unsigned, requirement(sandbox), ErrorCode.INVALID_SIGNATURE,
         Reason.AUTHORITY_NOT_SIGNER),
        ("gasless without a cosigner", usdc_transfer(
            devnet, 1_000_000, blockhash=bh, fee_payer=sandbox.wallets.server.pubkey()),
         requirement(sandbox), ErrorCode.INVALID_SIGNATURE, Reason.GASLESS_UNAVAILABLE),
    ]
    for name, tx, req, code, reason in cases:
        err = await refused(verifier, header(tx), req)
        assert (err.code, reason_of(err)) == (code, reason), name
        assert await on_chain(verifier, str(tx.signatures[0])) is None, name
    assert merchant_balance(sandbox) == 0
    assert verifier.rpc.attempts == 1 + len(cases)  # the blockhash, then status look-ups


async def test_payload_must_agree_with_its_transaction(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    other = str(Signature.new_unique())
    err = await refused(verifier, header(tx, signature=other), requirement(sandbox))
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_SIGNATURE,
                                          Reason.SIGNATURE_MISMATCH)
    err = await refused(verifier, header(tx, recipientTokenAccount=str(Keypair().pubkey())),
                        requirement(sandbox))
    assert err.code is ErrorCode.INVALID_RECIPIENT
    doc_payment = header(tx)
    mainnet = PaymentPayload(0, doc_payment.scheme, "mainnet-beta", doc_payment.payload)
    err = await refused(verifier, mainnet, requirement(sandbox))
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_PAYMENT_PROOF,
                                          Reason.NETWORK_MISMATCH)


class WalletCosigner:
    """The gasless seam, filled the simplest way: sign slot 0 with a held server key."""

    def __init__(self, wallet: Keypair) -> None:
        self.wallet = wallet

    def holds(self, fee_payer: str) -> bool:
        return fee_payer == str(self.wallet.pubkey())

    async def cosign(self, tx: VersionedTransaction,
                     facts: TransferFacts | None = None) -> VersionedTransaction:
        signature = self.wallet.sign_message(to_bytes_versioned(tx.message))
        return VersionedTransaction.populate(tx.message, [signature, *tx.signatures[1:]])


async def test_cosigner_seam_settles_a_gasless_payment(sandbox: RunningSandbox) -> None:
    server = sandbox.wallets.server
    v = make_verifier(sandbox, cosigner=WalletCosigner(server))
    try:
        payer_sol = sandbox.chain.balance(sandbox.wallets.payer.pubkey())
        tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(v),
                           fee_payer=server.pubkey(), compute_unit_limit=50_000)
        result = await v.verify(header(tx, feePayer=str(server.pubkey())),
                                requirement(sandbox))
        assert result.fee_payer == str(server.pubkey())
        assert result.wallet == str(sandbox.wallets.payer.pubkey())
        # The transaction id is the server's signature in slot 0, not the client's blank.
        assert tx.signatures[0] == Signature.default()
        assert landed(await on_chain(v, result.signature))
        assert sandbox.chain.balance(sandbox.wallets.payer.pubkey()) == payer_sol
        assert merchant_balance(sandbox) == 1_000_000
    finally:
        await v.aclose()


# --- refused by the chain -------------------------------------------------------------------

TOKEN_SHORTAGE_MESSAGE = ("Insufficient token balance. Please add more tokens to your wallet "
                          "and try again.")


@pytest.mark.parametrize("skip_preflight", [False, True], ids=["preflight", "on-chain"])
async def test_payer_without_enough_tokens_is_insufficient_funds_token(
        sandbox: RunningSandbox, skip_preflight: bool) -> None:
    v = make_verifier(sandbox, skip_preflight=skip_preflight)
    try:
        tx = usdc_transfer(sandbox.devnet, 5_000 * 10**6, blockhash=await blockhash(v))
        err = await refused(v, header(tx), requirement(sandbox))
        assert err.code is ErrorCode.INSUFFICIENT_FUNDS_TOKEN
        assert err.message == TOKEN_SHORTAGE_MESSAGE == err.code.user_message
        assert err.http_status == 402
        assert err.details is not None and err.details["instruction"] == 0
        assert reason_of(err) == (Reason.FAILED_ON_CHAIN if skip_preflight
                                  else Reason.SIMULATION_FAILED)
        # Sending it again never turns a failure into a success.
        again = await refused(v, header(tx), requirement(sandbox))
        assert again.code is ErrorCode.INSUFFICIENT_FUNDS_TOKEN
    finally:
        await v.aclose()
    assert merchant_balance(sandbox) == 0


@pytest.mark.parametrize("skip_preflight", [False, True], ids=["preflight", "dropped"])
async def test_unknown_blockhash_is_transaction_expired(
        sandbox: RunningSandbox, skip_preflight: bool) -> None:
    v = make_verifier(sandbox, skip_preflight=skip_preflight)
    try:
        tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=Hash.new_unique())
        err = await refused(v, header(tx), requirement(sandbox))
        assert err.code is ErrorCode.TRANSACTION_EXPIRED
        assert err.message == err.code.user_message
        assert reason_of(err) == (Reason.BLOCKHASH_EXPIRED if skip_preflight
                                  else Reason.SIMULATION_FAILED)
    finally:
        await v.aclose()


async def test_blockhash_older_than_150_blocks_is_transaction_expired(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    old = await blockhash(verifier)
    sandbox.chain.produce_blocks(151)
    err = await refused(verifier, header(usdc_transfer(sandbox.devnet, 1_000_000,
                                                       blockhash=old)),
                        requirement(sandbox))
    assert err.code is ErrorCode.TRANSACTION_EXPIRED


async def test_missing_recipient_token_account(sandbox: RunningSandbox,
                                               verifier: SolanaVerifier) -> None:
    newcomer = Keypair().pubkey()  # no USDC account yet
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier),
                       recipient_owner=newcomer)
    err = await refused(verifier, header(tx), requirement(sandbox, recipient_owner=str(newcomer)))
    assert err.code is ErrorCode.MISSING_TOKEN_ACCOUNT
    assert err.message == err.code.user_message


async def test_payer_without_sol_is_insufficient_funds_sol() -> None:
    async with running_devnet_sandbox(payer_lamports=0) as sb:
        v = make_verifier(sb)
        try:
            tx = usdc_transfer(sb.devnet, 1_000_000, blockhash=await blockhash(v))
            err = await refused(v, header(tx), requirement(sb))
            assert err.code is ErrorCode.INSUFFICIENT_FUNDS_SOL
            assert err.message == err.code.user_message
        finally:
            await v.aclose()


async def test_dropped_transaction_with_a_live_blockhash_is_not_confirmed() -> None:
    # skipPreflight and a fee payer with no SOL: the node accepts it, then drops it.
    async with running_devnet_sandbox(payer_lamports=0) as sb:
        short = ConfirmationSettings(timeout=0.4, poll_interval=0.02, ws_backstop_interval=0.1)
        v = make_verifier(sb, skip_preflight=True, confirmation=short)
        try:
            tx = usdc_transfer(sb.devnet, 1_000_000, blockhash=await blockhash(v))
            err = await refused(v, header(tx), requirement(sb))
            assert err.code is ErrorCode.TRANSACTION_NOT_CONFIRMED and err.retryable
            assert err.details == {"reason": Reason.NOT_CONFIRMED.value,
                                   "signature": str(tx.signatures[0])}
        finally:
            await v.aclose()


# --- idempotency, retries, fallbacks ----------------------------------------------------------


@pytest.mark.parametrize("skip_preflight", [False, True])
async def test_same_transaction_twice_is_idempotent(
        sandbox: RunningSandbox, skip_preflight: bool) -> None:
    v = make_verifier(sandbox, skip_preflight=skip_preflight)
    try:
        tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(v))
        first = await v.verify(header(tx), requirement(sandbox))
        second = await v.verify(header(tx), requirement(sandbox))
        assert not first.already_processed
        # With preflight the node says "already processed"; without it the node just
        # echoes the signature. Either way the payment is the same and moved once.
        assert second.already_processed is (not skip_preflight)
        assert second.signature == first.signature and second.slot == first.slot
        assert merchant_balance(sandbox) == 1_000_000
    finally:
        await v.aclose()


async def test_rate_limited_rpc_is_retried_until_it_answers(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    before = verifier.rpc.attempts
    sandbox.server.faults.fail_next(3, status=429)
    result = await verifier.verify(header(tx), requirement(sandbox))
    assert result.signature == str(tx.signatures[0])
    assert verifier.rpc.attempts - before == 4  # three 429s, then the send
    assert merchant_balance(sandbox) == 1_000_000


async def test_server_errors_are_retried_too(sandbox: RunningSandbox,
                                             verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    sandbox.server.faults.fail_next(2, status=503)
    await verifier.verify(header(tx), requirement(sandbox))
    assert merchant_balance(sandbox) == 1_000_000


async def test_retries_are_bounded_then_the_breaker_opens(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    sandbox.server.faults.fail_next(1_000, status=429)
    err = await refused(verifier, header(tx), requirement(sandbox))
    assert err.code is ErrorCode.RPC_ERROR and err.retryable and err.http_status == 502
    assert err.details is not None and err.details["attempts"] == 4  # 1 + max_retries
    # Five consecutive failures trip spec 12's Solana breaker: now it fails fast.
    attempts = verifier.rpc.attempts
    err = await refused(verifier, header(tx), requirement(sandbox))
    assert err.code is ErrorCode.RPC_ERROR
    assert err.details is not None and err.details.get("circuit") == "solana_rpc"
    assert verifier.rpc.attempts == attempts + 1  # the fifth failure opened it
    assert await verifier.health() is False
    sandbox.server.faults.fail_next(0)
    assert merchant_balance(sandbox) == 0


async def test_unreachable_rpc_is_a_network_error(sandbox: RunningSandbox) -> None:
    v = SolanaVerifier("http://127.0.0.1:9", None, network="devnet", confirmation=FAST,
                       retry=FAST_RETRY, use_websocket=False)
    try:
        tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=Hash.new_unique())
        err = await refused(v, header(tx), requirement(sandbox))
        assert err.code is ErrorCode.NETWORK_ERROR and err.details is not None
        assert err.details["attempts"] == 3  # 1 + max_transport_retries
        assert await v.health() is False
    finally:
        await v.aclose()


@pytest.mark.parametrize("ws", ["dead port", "disabled"])
async def test_without_a_websocket_polling_confirms(sandbox: RunningSandbox, ws: str) -> None:
    options: dict[str, Any] = ({"ws_url": "ws://127.0.0.1:9"} if ws == "dead port"
                               else {"use_websocket": False})
    v = make_verifier(sandbox, **options)
    try:
        for _ in range(2):
            tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(v))
            settlement = await v.settle(tx, v.prepare(header(tx), requirement(sandbox)).facts)
            assert settlement.confirmed_via == "polling"
        if v.watcher is not None:
            assert v.watcher.connects == 0 and not v.watcher.available  # resting, not retrying
        assert merchant_balance(sandbox) == 2_000_000
    finally:
        await v.aclose()


async def test_websocket_reconnects_for_the_next_payment(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    await verifier.verify(header(tx), requirement(sandbox))  # connects the WebSocket
    assert verifier.watcher is not None
    await verifier.watcher.aclose()  # as if the node hung up
    tx2 = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    result = await verifier.verify(header(tx2), requirement(sandbox))
    assert result.signature == str(tx2.signatures[0])
    assert verifier.watcher.connects == 2  # reconnected for the next payment


async def test_websocket_lost_while_waiting_falls_back_to_polling(
        sandbox: RunningSandbox, verifier: SolanaVerifier) -> None:
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=await blockhash(verifier))
    facts = verifier.prepare(header(tx), requirement(sandbox)).facts
    subscription = await verifier.confirmer.subscribe(facts.signature)
    assert subscription is not None and await subscription.ready()
    watcher = verifier.watcher
    assert watcher is not None and watcher._conn is not None
    await watcher._conn.close()  # the connection dies with the subscription live
    await asyncio.wait_for(asyncio.shield(subscription.notification), 1)
    assert subscription.notification.result() is None  # waiters are told to poll
    await verifier.rpc.send_transaction(bytes(tx), skip_preflight=False)
    confirmation = await verifier.confirmer.wait(facts.signature, facts.blockhash,
                                                 subscription)
    assert confirmation.via == "polling" and confirmation.err is None
    assert confirmation.slot == sandbox.chain.slot


# --- look-ups -------------------------------------------------------------------------------


async def test_a_failed_transaction_lands_with_its_error(sandbox: RunningSandbox,
                                                         verifier: SolanaVerifier) -> None:
    assert await on_chain(verifier, str(Signature.new_unique())) is None
    v = make_verifier(sandbox, skip_preflight=True)
    try:
        failed = usdc_transfer(sandbox.devnet, 10**12, blockhash=await blockhash(v))
        with pytest.raises(CedrosError) as caught:
            await v.verify(header(failed), requirement(sandbox))
    finally:
        await v.aclose()
    assert caught.value.code is ErrorCode.INSUFFICIENT_FUNDS_TOKEN
    status = await on_chain(verifier, str(failed.signatures[0]))
    assert status is not None and not landed(status)
    assert status["err"] == {"InstructionError": [0, {"Custom": 1}]}


async def test_health(verifier: SolanaVerifier) -> None:
    assert await verifier.health() is True
