"""Real SPL payments through the sandbox, the way an x402 client and the server make them."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import base58
import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import transfer_checked
from spl.token.models import TransferCheckedParams

from cedros_pay.sandbox.network import DEVNET_USDC_MINT
from cedros_pay.sandbox.testing import (
    RawRpc,
    RunningSandbox,
    running_devnet_sandbox,
    usdc_transfer,
)

SKIP_PREFLIGHT = TxOpts(skip_preflight=True)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as running:
        yield running


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(sandbox.url) as rpc:
        yield rpc


@pytest.fixture
async def raw(sandbox: RunningSandbox) -> AsyncIterator[RawRpc]:
    async with httpx.AsyncClient() as http:
        yield RawRpc(sandbox.url, http)


def _payment_instructions(sandbox: RunningSandbox, amount: int, memo: str,
                          program: Any = TOKEN_PROGRAM_ID) -> list[Instruction]:
    """TransferChecked payer -> merchant plus a memo, built with solana-py's spl helpers."""
    devnet = sandbox.devnet
    payer = devnet.wallets.payer.pubkey()
    return [
        transfer_checked(TransferCheckedParams(
            program_id=program, source=devnet.payer_usdc, mint=DEVNET_USDC_MINT,
            dest=devnet.merchant_usdc, owner=payer, amount=amount, decimals=6)),
        create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer,
                               message=memo.encode())),
    ]


def _legacy_payment(sandbox: RunningSandbox, amount: int, blockhash: Hash,
                    memo: str = "cedros:demo-article") -> Transaction:
    payer = sandbox.wallets.payer
    message = Message.new_with_blockhash(_payment_instructions(sandbox, amount, memo),
                                         payer.pubkey(), blockhash)
    return Transaction([payer], message, blockhash)


async def _token_amount(client: AsyncClient, account: Any) -> int:
    return int((await client.get_token_account_balance(account)).value.amount)


async def _raw_send(raw: RawRpc, tx: Transaction | VersionedTransaction,
                    **config: Any) -> dict[str, Any]:
    return await raw.call("sendTransaction", [base64.b64encode(bytes(tx)).decode(),
                                              {"encoding": "base64", **config}])


async def _status(client: AsyncClient, signature: Signature) -> Any:
    return (await client.get_signature_statuses([signature])).value[0]


async def test_transfer_checked_with_memo_moves_exactly_the_amount(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    devnet = sandbox.devnet
    before_payer = await _token_amount(client, devnet.payer_usdc)
    before_merchant = await _token_amount(client, devnet.merchant_usdc)

    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _legacy_payment(sandbox, 1_250_000, blockhash)
    signature = (await client.send_raw_transaction(bytes(tx))).value
    status = await _status(client, signature)

    assert signature == tx.signatures[0]
    assert status is not None and status.err is None
    assert str(status.confirmation_status) == "TransactionConfirmationStatus.Finalized"
    assert await _token_amount(client, devnet.payer_usdc) == before_payer - 1_250_000
    assert await _token_amount(client, devnet.merchant_usdc) == before_merchant + 1_250_000

    found = (await client.get_transaction(signature)).value
    assert found is not None and found.slot == status.slot
    meta = found.transaction.meta
    assert meta is not None and meta.err is None and meta.fee == 5_000
    assert "Program log: cedros:demo-article" in (meta.log_messages or [])
    pre = {b.owner: int(b.ui_token_amount.amount) for b in meta.pre_token_balances or []}
    post = {b.owner: int(b.ui_token_amount.amount) for b in meta.post_token_balances or []}
    merchant = devnet.wallets.merchant.pubkey()
    assert post[merchant] - pre[merchant] == 1_250_000
    # The wall clock of when it landed (a minute of slack for a loaded machine), not 0.
    assert found.block_time is not None and abs(found.block_time - time.time()) < 60


async def test_v0_transaction_lands_and_reports_its_version(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    payer = sandbox.wallets.payer
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    message = MessageV0.try_compile(payer.pubkey(), _payment_instructions(sandbox, 2_000_000,
                                                                          "v0"), [], blockhash)
    tx = VersionedTransaction(message, [payer])
    signature = (await client.send_raw_transaction(bytes(tx))).value
    assert (await _status(client, signature)).err is None
    assert await _token_amount(client, sandbox.devnet.merchant_usdc) == 2_000_000

    found = (await client.get_transaction(signature, max_supported_transaction_version=0)).value
    assert found is not None and found.transaction.version == 0
    as_base64 = (await client.get_transaction(signature, encoding="base64",
                                              max_supported_transaction_version=0)).value
    assert as_base64 is not None
    assert bytes(as_base64.transaction.transaction) == bytes(tx)  # type: ignore[arg-type]
    # Without maxSupportedTransactionVersion a validator refuses to return a v0 transaction.
    reply = await raw.call("getTransaction", [str(signature), {"encoding": "json"}])
    assert reply["error"]["code"] == -32015


async def test_overdraft_fails_preflight_with_custom_error_0x1_and_logs(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _legacy_payment(sandbox, 5_000 * 10**6, blockhash)

    reply = await _raw_send(raw, tx)
    error = reply["error"]
    assert error["code"] == -32002
    assert error["message"] == ("Transaction simulation failed: Error processing Instruction 0: "
                                "custom program error: 0x1")
    assert error["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert "Program log: Error: insufficient funds" in error["data"]["logs"]
    assert error["data"]["accounts"] is None and error["data"]["unitsConsumed"] > 0

    with pytest.raises(RPCException) as caught:  # and solana-py parses it
        await client.send_raw_transaction(bytes(tx))
    assert "custom program error: 0x1" in str(caught.value)
    assert await _status(client, tx.signatures[0]) is None  # nothing landed


async def test_overdraft_without_preflight_lands_as_failed_and_pays_the_fee(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    payer = sandbox.wallets.payer.pubkey()
    lamports = (await client.get_balance(payer)).value
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _legacy_payment(sandbox, 5_000 * 10**6, blockhash)
    signature = (await client.send_raw_transaction(bytes(tx), SKIP_PREFLIGHT)).value
    status = await _status(client, signature)
    assert status is not None and status.err is not None
    assert "InstructionError" in str(status.err)
    assert (await client.get_balance(payer)).value == lamports - 5_000
    assert await _token_amount(client, sandbox.devnet.payer_usdc) == 1_000 * 10**6


async def test_duplicate_send_is_already_processed(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _legacy_payment(sandbox, 1_000_000, blockhash)
    await client.send_raw_transaction(bytes(tx))

    reply = await _raw_send(raw, tx)
    assert reply["error"]["code"] == -32002
    assert reply["error"]["data"]["err"] == "AlreadyProcessed"
    assert "already been processed" in reply["error"]["message"]
    # Without preflight the node just answers with the signature again; nothing moves twice.
    again = await _raw_send(raw, tx, skipPreflight=True)
    assert again["result"] == str(tx.signatures[0])
    assert await _token_amount(client, sandbox.devnet.merchant_usdc) == 1_000_000


async def test_blockhash_stays_valid_for_150_blocks_then_expires(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    old = (await client.get_latest_blockhash()).value.blockhash
    sandbox.chain.produce_blocks(120)
    young_enough = _legacy_payment(sandbox, 1, old, memo="aged 120 blocks")
    assert (await _status(client, (await client.send_raw_transaction(bytes(young_enough))).value
                          )).err is None  # that landing made block 121

    sandbox.chain.produce_blocks(30)  # now 151 blocks old
    too_old = _legacy_payment(sandbox, 1, old, memo="aged 151 blocks")
    reply = await _raw_send(raw, too_old)
    assert reply["error"]["code"] == -32002
    assert reply["error"]["message"] == "Transaction simulation failed: Blockhash not found"
    assert reply["error"]["data"]["err"] == "BlockhashNotFound"

    unknown = _legacy_payment(sandbox, 1, Hash.new_unique())
    assert "Blockhash not found" in (await _raw_send(raw, unknown))["error"]["message"]
    # skipPreflight: accepted, then silently dropped, as on a real cluster.
    dropped = await _raw_send(raw, unknown, skipPreflight=True)
    assert dropped["result"] == str(unknown.signatures[0])
    assert await _status(client, unknown.signatures[0]) is None


async def test_bad_signature_is_refused_with_32003(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _legacy_payment(sandbox, 1, blockhash)
    forged = Transaction.populate(tx.message, [Keypair().sign_message(b"someone else")])
    for config in ({}, {"skipPreflight": True}):
        reply = await _raw_send(raw, forged, **config)
        assert reply["error"] == {"code": -32003,
                                  "message": "Transaction signature verification failure"}


async def test_simulation_options(sandbox: RunningSandbox, client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = VersionedTransaction.from_legacy(_legacy_payment(sandbox, 3_000_000, blockhash))
    ok = (await client.simulate_transaction(tx, sig_verify=True)).value
    assert ok.err is None and ok.units_consumed and ok.logs

    stale = VersionedTransaction.from_legacy(_legacy_payment(sandbox, 1, Hash.new_unique()))
    assert "BlockhashNotFound" in str((await client.simulate_transaction(stale)).value.err)
    replaced = (await client.simulate_transaction(stale, replace_recent_blockhash=True)).value
    assert replaced.err is None
    assert replaced.replacement_blockhash is not None

    forged = VersionedTransaction.populate(tx.message, [Signature.default()])
    with pytest.raises(RPCException):
        await client.simulate_transaction(forged, sig_verify=True)
    assert (await client.simulate_transaction(forged)).value.err is None
    # A simulation changes nothing.
    assert await _token_amount(client, sandbox.devnet.merchant_usdc) == 0


async def test_gasless_transfer_paid_by_the_server_wallet(sandbox: RunningSandbox,
                                                         client: AsyncClient) -> None:
    devnet = sandbox.devnet
    server = devnet.wallets.server
    payer_sol = (await client.get_balance(devnet.wallets.payer.pubkey())).value
    server_sol = (await client.get_balance(server.pubkey())).value
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    unsigned = usdc_transfer(devnet, 4_000_000, blockhash=blockhash, fee_payer=server.pubkey(),
                             memo="gasless", compute_unit_limit=50_000, compute_unit_price=1_000)
    assert unsigned.signatures[0] == Signature.default()  # the slot the server fills in
    signed = VersionedTransaction(unsigned.message, [server, devnet.wallets.payer])
    signature = (await client.send_raw_transaction(bytes(signed))).value
    assert (await _status(client, signature)).err is None
    assert (await client.get_balance(server.pubkey())).value == server_sol - 5_000 * 2 - 50
    assert (await client.get_balance(devnet.wallets.payer.pubkey())).value == payer_sol
    assert await _token_amount(client, devnet.merchant_usdc) == 4_000_000


async def test_token_2022_mint_works_too() -> None:
    async with running_devnet_sandbox(token_program=TOKEN_2022_PROGRAM_ID) as sandbox:
        await _pay_with_token_2022(sandbox)


async def _pay_with_token_2022(sandbox: RunningSandbox) -> None:
    async with AsyncClient(sandbox.url) as client:
        blockhash = (await client.get_latest_blockhash()).value.blockhash
        payer = sandbox.wallets.payer
        message = Message.new_with_blockhash(
            _payment_instructions(sandbox, 7_000_000, "t22", TOKEN_2022_PROGRAM_ID),
            payer.pubkey(), blockhash)
        signature = (await client.send_raw_transaction(
            bytes(Transaction([payer], message, blockhash)))).value
        assert (await _status(client, signature)).err is None
        assert await _token_amount(client, sandbox.devnet.merchant_usdc) == 7_000_000
        parsed = (await client.get_account_info_json_parsed(sandbox.devnet.merchant_usdc)).value
        assert parsed is not None
        assert parsed.data.program == "spl-token-2022"  # type: ignore[union-attr]
        info = parsed.data.parsed["info"]  # type: ignore[union-attr]
        assert info["extensions"] == [{"extension": "immutableOwner"}]


async def test_json_parsed_transaction_decodes_the_payment(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 1_500_000, blockhash=blockhash, memo="order-42",
                       compute_unit_limit=40_000)
    signature = (await client.send_raw_transaction(bytes(tx))).value
    found = (await client.get_transaction(signature, encoding="jsonParsed",
                                          max_supported_transaction_version=0)).value
    assert found is not None
    instructions = found.transaction.transaction.message.instructions  # type: ignore[union-attr]
    budget, payment, memo = instructions
    assert str(budget.program_id) == "ComputeBudget111111111111111111111111111111"
    assert payment.parsed["type"] == "transferChecked"  # type: ignore[union-attr]
    info = payment.parsed["info"]  # type: ignore[union-attr]
    assert info["tokenAmount"]["amount"] == "1500000"
    assert info["destination"] == str(sandbox.devnet.merchant_usdc)
    assert info["authority"] == str(sandbox.wallets.payer.pubkey())
    assert memo.parsed == "order-42"  # type: ignore[union-attr]


async def test_base58_is_the_default_send_encoding(
        sandbox: RunningSandbox, client: AsyncClient, raw: RawRpc) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 1, blockhash=blockhash)
    reply = await raw.call("sendTransaction", [base58.b58encode(bytes(tx)).decode()])
    assert reply["result"] == str(tx.signatures[0])
    garbage = await raw.call("sendTransaction", ["AAAA", {"encoding": "base64"}])
    assert garbage["error"]["code"] == -32602


async def test_status_cache_forgets_after_300_slots_unless_history_is_searched(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    signature = (await client.send_raw_transaction(bytes(
        usdc_transfer(sandbox.devnet, 1, blockhash=blockhash)))).value
    sandbox.chain.produce_blocks(301)
    assert (await client.get_signature_statuses([signature])).value == [None]
    found = (await client.get_signature_statuses([signature], search_transaction_history=True)
             ).value[0]
    assert found is not None and found.err is None
