"""The exact scheme's offline rules: envelope parsing, `accepted`, network names and the
transaction layout the server co-signs (x402/exact.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.mints import MintPrograms
from cedros_pay.sandbox import spl
from cedros_pay.x402 import exact
from cedros_pay.x402.http import decode_payment_header
from cedros_pay.x402.networks import caip2, v1_network
from cedros_pay.x402.schemas import ExactPayment, ExactRequirement, PaymentRequired
from cedros_pay.x402.svm import LIGHTHOUSE_PROGRAM_ID

MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
SERVER = Keypair()
BUYER = Keypair()
MERCHANT = Keypair().pubkey()
MEMO = "pay:article:AbCd1234"


def ours(address: str) -> bool:
    return address == str(SERVER.pubkey())


def transfer_ix(amount: int = 500_000, program: Pubkey = spl.TOKEN_PROGRAM_ID) -> Instruction:
    return spl.transfer_checked(
        spl.associated_token_address(BUYER.pubkey(), MINT, program), MINT,
        spl.associated_token_address(MERCHANT, MINT, program), BUYER.pubkey(), amount, 6,
        program)


def build(*instructions: Instruction, fee_payer: Pubkey | None = None) -> VersionedTransaction:
    payer = fee_payer or SERVER.pubkey()
    message = MessageV0.try_compile(payer, list(instructions), [], Hash.default())
    required = message.account_keys[:message.header.num_required_signatures]
    signers = [BUYER if key == BUYER.pubkey() else NullSigner(key) for key in required]
    return VersionedTransaction(message, signers)


def standard(*, price: int = 1, memo: str | None = MEMO,
             extra: tuple[Instruction, ...] = ()) -> VersionedTransaction:
    """What the official SDK builds: limit, price, TransferChecked, memo."""
    ixs = [set_compute_unit_limit(20_000), set_compute_unit_price(price), transfer_ix()]
    if memo is not None:
        ixs.append(spl.memo(memo))
    return build(*ixs, *extra)


def refused(tx: VersionedTransaction, memo: str | re.Pattern[str] | None = MEMO,
            ) -> CedrosError:
    with pytest.raises(CedrosError) as info:
        exact.check_layout(tx, is_fee_payer=ours, memo=memo)
    return info.value


def reason(err: CedrosError) -> Any:
    return err.details["reason"]


def test_the_sdk_layout_passes() -> None:
    layout = exact.check_layout(standard(), is_fee_payer=ours, memo=MEMO)
    assert layout.fee_payer == str(SERVER.pubkey())
    assert (layout.compute_unit_limit, layout.compute_unit_price) == (20_000, 1)
    assert layout.memos == (MEMO,)


def test_a_lighthouse_instruction_is_tolerated() -> None:
    lighthouse = Instruction(LIGHTHOUSE_PROGRAM_ID, b"\x01", [])
    exact.check_layout(standard(extra=(lighthouse,)), is_fee_payer=ours, memo=MEMO)


def test_token_2022_transfer_is_accepted() -> None:
    tx = build(set_compute_unit_limit(20_000), set_compute_unit_price(1),
               transfer_ix(program=spl.TOKEN_2022_PROGRAM_ID), spl.memo(MEMO))
    exact.check_layout(tx, is_fee_payer=ours, memo=MEMO)


@pytest.mark.parametrize("count", [2, 7])
def test_instruction_count_must_be_three_to_six(count: int) -> None:
    ixs = [set_compute_unit_limit(20_000), set_compute_unit_price(1), transfer_ix()]
    ixs += [spl.memo(f"m{i}") for i in range(4)]
    err = refused(build(*ixs[:count]), memo=None)
    assert (err.code, reason(err)) == (ErrorCode.INVALID_TRANSACTION,
                                       exact.ExactReason.INSTRUCTION_COUNT)


def test_compute_limit_must_come_first() -> None:
    tx = build(set_compute_unit_price(1), set_compute_unit_limit(20_000), transfer_ix())
    assert reason(refused(tx, memo=None)) == exact.ExactReason.COMPUTE_LIMIT


def test_compute_price_must_come_second() -> None:
    tx = build(set_compute_unit_limit(20_000), transfer_ix(), set_compute_unit_price(1))
    assert reason(refused(tx, memo=None)) == exact.ExactReason.COMPUTE_PRICE


def test_compute_price_ceiling_is_five_lamports() -> None:
    exact.check_layout(standard(price=5_000_000), is_fee_payer=ours, memo=MEMO)
    err = refused(standard(price=5_000_001))
    assert reason(err) == exact.ExactReason.COMPUTE_PRICE_TOO_HIGH
    assert err.details["got"] == 5_000_001


def test_transfer_must_be_third() -> None:
    tx = build(set_compute_unit_limit(20_000), set_compute_unit_price(1), spl.memo(MEMO),
               transfer_ix())
    err = refused(tx)
    assert (err.code, reason(err)) == (ErrorCode.NOT_SPL_TRANSFER,
                                       exact.ExactReason.TRANSFER_POSITION)


def test_other_programs_after_the_transfer_are_refused() -> None:
    sneaky = transfer(TransferParams(from_pubkey=BUYER.pubkey(), to_pubkey=MERCHANT,
                                     lamports=1))
    err = refused(standard(extra=(sneaky,)))
    assert reason(err) == exact.ExactReason.UNKNOWN_INSTRUCTION
    assert err.details["index"] == 4


def test_fee_payer_must_be_a_server_wallet() -> None:
    stranger = Keypair()
    tx = build(set_compute_unit_limit(20_000), set_compute_unit_price(1), transfer_ix(),
               spl.memo(MEMO), fee_payer=stranger.pubkey())
    assert reason(refused(tx)) == exact.ExactReason.FEE_PAYER_NOT_OURS


def test_fee_payer_may_not_appear_in_an_instruction() -> None:
    # A memo "signed" by the fee payer: its signature would vouch for more than the fee.
    tx = standard(extra=(spl.memo("x", signers=(SERVER.pubkey(),)),))
    err = refused(tx)
    assert reason(err) == exact.ExactReason.FEE_PAYER_IN_INSTRUCTION


def test_fee_payer_as_transfer_authority_is_refused() -> None:
    source = spl.associated_token_address(SERVER.pubkey(), MINT)
    stolen = spl.transfer_checked(source, MINT, spl.associated_token_address(MERCHANT, MINT),
                                  SERVER.pubkey(), 1, 6)
    tx = build(set_compute_unit_limit(20_000), set_compute_unit_price(1), stolen)
    assert reason(refused(tx, memo=None)) == exact.ExactReason.FEE_PAYER_IN_INSTRUCTION


def test_memo_must_equal_the_quoted_one() -> None:
    err = refused(standard(memo="pay:article:zzzzzzzz"))
    assert (err.code, reason(err)) == (ErrorCode.INVALID_MEMO, exact.ExactReason.MEMO_MISMATCH)
    missing = refused(standard(memo=None))
    assert missing.code == ErrorCode.MISSING_MEMO


def test_v1_memo_is_checked_by_shape() -> None:
    shape = re.compile(r"pay:article:[A-Za-z0-9_-]{8}")
    exact.check_layout(standard(), is_fee_payer=ours, memo=shape)
    assert reason(refused(standard(memo="hello"), memo=shape)) == \
        exact.ExactReason.MEMO_MISMATCH


def test_lookup_tables_are_refused() -> None:
    # Hand-built: a v0 message whose account list references a lookup table.
    from solders.address_lookup_table_account import AddressLookupTableAccount

    table = AddressLookupTableAccount(Pubkey.new_unique(), [MERCHANT])
    memo_with_table = Instruction(spl.MEMO_PROGRAM_ID, b"hi",
                                  [AccountMeta(MERCHANT, is_signer=False, is_writable=False)])
    message = MessageV0.try_compile(
        SERVER.pubkey(), [set_compute_unit_limit(1), set_compute_unit_price(1),
                          transfer_ix(), memo_with_table], [table], Hash.default())
    tx = VersionedTransaction(message, [NullSigner(SERVER.pubkey()), BUYER])
    assert reason(refused(tx, memo=None)) == exact.ExactReason.LOOKUP_TABLES


# --- envelope, network and accepted ---------------------------------------------------------


def requirement() -> ExactRequirement:
    return ExactRequirement(
        network="devnet", asset=str(MINT), amount_atomic=500_000, pay_to=str(MERCHANT),
        max_timeout_seconds=300, fee_payer=str(SERVER.pubkey()), memo=MEMO,
        url="http://shop/paywall/article", description="An article")


def test_requirement_wire_forms() -> None:
    entry = requirement().entry()
    assert entry == {"scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
                     "asset": str(MINT), "amount": "500000", "payTo": str(MERCHANT),
                     "maxTimeoutSeconds": 300,
                     "extra": {"feePayer": str(SERVER.pubkey()), "memo": MEMO}}
    v1 = requirement().v1_entry()
    assert (v1["network"], v1["maxAmountRequired"], v1["resource"]) == (
        "solana-devnet", "500000", "http://shop/paywall/article")
    doc = PaymentRequired("u", "d", accepts=(requirement(),)).document()
    assert doc["x402Version"] == 2 and doc["resource"] == {
        "url": "u", "description": "d", "mimeType": "application/json"}


def test_caip2_ids() -> None:
    assert caip2("mainnet-beta") == "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
    assert caip2("devnet") == "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
    assert v1_network("mainnet-beta") == "solana"
    with pytest.raises(CedrosError):
        caip2("moonnet")


def header(doc: dict[str, Any]) -> ExactPayment:
    import base64
    import json

    return exact.parse_exact(decode_payment_header(
        base64.b64encode(json.dumps(doc).encode()).decode()))


def test_parse_v2_and_v1_envelopes() -> None:
    v2 = header({"x402Version": 2, "payload": {"transaction": "AAA="},
                 "accepted": requirement().entry(), "resource": {"url": "u"}})
    assert (v2.version, v2.network, v2.transaction) == (
        2, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "AAA=")
    v1 = header({"x402Version": 1, "scheme": "exact", "network": "solana-devnet",
                 "payload": {"transaction": "AAA="}})
    assert (v1.version, v1.network, v1.accepted) == (1, "solana-devnet", None)
    exact.check_network(v1, "devnet")
    exact.check_network(v2, "devnet")
    with pytest.raises(CedrosError) as info:
        exact.check_network(v1, "mainnet-beta")
    assert reason(info.value) == exact.ExactReason.NETWORK_MISMATCH


@pytest.mark.parametrize("doc", [
    {"x402Version": 2, "payload": {"transaction": "AAA="}},  # no accepted
    {"x402Version": 1, "scheme": "exact", "network": "solana-devnet", "payload": {}},
    {"x402Version": 1, "scheme": "upto", "network": "solana-devnet",
     "payload": {"transaction": "AAA="}},
])
def test_malformed_envelopes_are_invalid_payment_proof(doc: dict[str, Any]) -> None:
    with pytest.raises(CedrosError) as info:
        header(doc)
    assert info.value.code == ErrorCode.INVALID_PAYMENT_PROOF


def test_accepted_must_be_the_current_offer() -> None:
    shape = re.compile(r"pay:article:[A-Za-z0-9_-]{8}")
    exact.check_accepted(requirement().entry(), requirement(), is_fee_payer=ours,
                         memo_shape=shape)
    for key, value in (("amount", "1"), ("payTo", str(BUYER.pubkey())),
                       ("asset", str(Pubkey.new_unique())), ("network", "solana:other")):
        changed = {**requirement().entry(), key: value}
        with pytest.raises(CedrosError) as info:
            exact.check_accepted(changed, requirement(), is_fee_payer=ours)
        assert reason(info.value) == exact.ExactReason.ACCEPTED_MISMATCH
        assert info.value.details["field"] == f"accepted.{key}"


def test_accepted_fee_payer_and_memo_must_be_ours() -> None:
    entry = requirement().entry()
    stranger = {**entry, "extra": {"feePayer": str(BUYER.pubkey()), "memo": MEMO}}
    with pytest.raises(CedrosError) as info:
        exact.check_accepted(stranger, requirement(), is_fee_payer=ours)
    assert reason(info.value) == exact.ExactReason.FEE_PAYER_NOT_OURS
    invented = {**entry, "extra": {"feePayer": str(SERVER.pubkey()), "memo": "mine"}}
    with pytest.raises(CedrosError) as info:
        exact.check_accepted(invented, requirement(), is_fee_payer=ours,
                             memo_shape=re.compile(r"pay:article:[A-Za-z0-9_-]{8}"))
    assert info.value.code == ErrorCode.INVALID_MEMO
    too_long = {**entry, "extra": {"feePayer": str(SERVER.pubkey()), "memo": "x" * 257}}
    with pytest.raises(CedrosError):
        exact.check_accepted(too_long, requirement(), is_fee_payer=ours)


# --- the mint's token program ----------------------------------------------------------------


async def test_mint_program_is_read_once_and_cached() -> None:
    calls: list[str] = []

    async def call(method: str, params: list[Any]) -> Any:
        calls.append(method)
        return {"value": {"owner": str(spl.TOKEN_2022_PROGRAM_ID), "data": ["", "base64"]}}

    programs = MintPrograms(call)
    assert await programs.program_of(str(MINT)) == str(spl.TOKEN_2022_PROGRAM_ID)
    assert await programs.program_of(str(MINT)) == str(spl.TOKEN_2022_PROGRAM_ID)
    assert calls == ["getAccountInfo"]


async def test_mint_program_falls_back_to_the_known_table() -> None:
    async def down(method: str, params: list[Any]) -> Any:
        raise CedrosError(ErrorCode.NETWORK_ERROR, "down")

    async def missing(method: str, params: list[Any]) -> Any:
        return {"value": None}

    pyusd = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"
    assert await MintPrograms(down).program_of(str(MINT)) == str(spl.TOKEN_PROGRAM_ID)
    assert await MintPrograms(missing).program_of(pyusd) == \
        str(spl.TOKEN_2022_PROGRAM_ID)
