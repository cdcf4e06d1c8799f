"""Decoding and inspecting payment transactions, the requirement rules, and the mapping of
Solana failures to spec codes. All offline: solders builds and signs the transactions."""

from __future__ import annotations

import base64
import re

import pytest
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.null_signer import NullSigner
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.failures import (
    code_for_transaction_error,
    on_chain_failure,
    send_failure,
)
from cedros_pay.integrations.solana.rpc import RpcCallError
from cedros_pay.integrations.solana.transaction import (
    MAX_TRANSACTION_BYTES,
    decode_transaction,
    inspect,
)
from cedros_pay.integrations.solana.verifier import Requirement, SolanaVerifier, check
from cedros_pay.sandbox import spl
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.schemas import PaymentPayload, SolanaPayload
from cedros_pay.x402.svm import MEMO_V1_PROGRAM_ID

TOKEN = spl.TOKEN_PROGRAM_ID
TOKEN_2022 = spl.TOKEN_2022_PROGRAM_ID
PAYER = Keypair()
MERCHANT = Keypair().pubkey()
MINT = Pubkey.from_string("4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU")
BLOCKHASH = Hash.new_unique()


def ata(owner: Pubkey, program: Pubkey = TOKEN, mint: Pubkey = MINT) -> Pubkey:
    return get_associated_token_address(owner, mint, program)


def transfer(amount: int = 1_000_000, *, program: Pubkey = TOKEN, decimals: int = 6,
             to: Pubkey = MERCHANT, authority: Pubkey | None = None,
             mint: Pubkey = MINT) -> Instruction:
    owner = authority or PAYER.pubkey()
    return spl.transfer_checked(ata(owner, program, mint), mint, ata(to, program, mint), owner,
                                amount, decimals, program)


def signed(*instructions: Instruction, legacy: bool = False,
           payer: Keypair = PAYER) -> VersionedTransaction:
    message: Message | MessageV0 = (
        Message.new_with_blockhash(list(instructions), payer.pubkey(), BLOCKHASH) if legacy
        else MessageV0.try_compile(payer.pubkey(), list(instructions), [], BLOCKHASH))
    return VersionedTransaction(message, [payer])


def wire(tx: VersionedTransaction) -> str:
    return base64.b64encode(bytes(tx)).decode()


def requirement(**overrides: object) -> Requirement:
    values: dict[str, object] = {
        "network": "devnet", "mints": (str(MINT),), "decimals": 6, "amount_atomic": 1_000_000,
        "recipient_owner": str(MERCHANT)}
    values.update(overrides)
    return Requirement(**values)  # type: ignore[arg-type]


def refusal(fn: object, *args: object, **kwargs: object) -> CedrosError:
    with pytest.raises(CedrosError) as caught:
        fn(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def reason_of(err: CedrosError) -> str:
    assert err.details is not None
    return str(err.details["reason"])


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "v0"])
def test_decode_and_inspect_a_signed_payment(legacy: bool) -> None:
    tx = signed(set_compute_unit_limit(40_000), set_compute_unit_price(1_000),
                transfer(1_250_000), spl.memo("cedros:article:abc"), legacy=legacy)
    facts = inspect(decode_transaction(wire(tx)))
    assert facts.version == ("legacy" if legacy else 0)
    assert facts.signature == str(tx.signatures[0])
    assert facts.fee_payer == str(PAYER.pubkey())
    assert facts.blockhash == str(BLOCKHASH)
    assert facts.instruction_index == 2
    assert facts.token_program == str(TOKEN)
    assert facts.source == str(ata(PAYER.pubkey()))
    assert facts.mint == str(MINT)
    assert facts.destination == str(ata(MERCHANT))
    assert facts.authority == str(PAYER.pubkey())
    assert (facts.amount, facts.decimals) == (1_250_000, 6)
    assert facts.memos == ("cedros:article:abc",)
    assert (facts.compute_unit_limit, facts.compute_unit_price) == (40_000, 1_000)
    assert facts.signers == (str(PAYER.pubkey()),)
    assert facts.fully_signed and facts.authority_signed
    assert facts.other_programs == ()


def test_token_2022_transfer_is_found() -> None:
    facts = inspect(signed(transfer(5, program=TOKEN_2022)))
    assert facts.token_program == str(TOKEN_2022)
    assert facts.destination == str(ata(MERCHANT, TOKEN_2022))


def test_every_memo_is_collected_from_both_memo_programs_in_order() -> None:
    memo_v1 = Instruction(MEMO_V1_PROGRAM_ID, b"first", [])
    facts = inspect(signed(memo_v1, transfer(), spl.memo("second"), spl.memo("caf\u00e9")))
    assert facts.memos == ("first", "second", "caf\u00e9")
    assert facts.instruction_index == 1


def test_a_large_amount_is_read_as_unsigned_64_bit() -> None:
    assert inspect(signed(transfer(2**64 - 1))).amount == 2**64 - 1


def test_unsigned_transaction_reports_missing_signer() -> None:
    message = MessageV0.try_compile(PAYER.pubkey(), [transfer()], [], BLOCKHASH)
    facts = inspect(VersionedTransaction.populate(message, [Signature.default()]))
    assert facts.missing_signers == (str(PAYER.pubkey()),)
    assert facts.invalid_signers == ()
    assert not facts.fully_signed and not facts.authority_signed


def test_forged_signature_is_invalid_not_missing() -> None:
    message = MessageV0.try_compile(PAYER.pubkey(), [transfer()], [], BLOCKHASH)
    forged = VersionedTransaction.populate(message, [Keypair().sign_message(b"other")])
    facts = inspect(forged)
    assert facts.invalid_signers == (str(PAYER.pubkey()),) and facts.missing_signers == ()
    assert not facts.authority_signed


def test_gasless_shape_is_missing_only_the_fee_payer() -> None:
    server = Keypair().pubkey()
    message = MessageV0.try_compile(server, [transfer()], [], BLOCKHASH)
    tx = VersionedTransaction(message, [NullSigner(server), PAYER])
    facts = inspect(tx)
    assert facts.fee_payer == str(server)
    assert facts.missing_signers == (str(server),)
    assert facts.authority_signed and not facts.fully_signed


def test_authority_that_is_not_a_signer_is_reported() -> None:
    multisig = Keypair().pubkey()
    ix = transfer(authority=multisig)
    ix = Instruction(ix.program_id, bytes(ix.data),
                     [*ix.accounts[:3], AccountMeta(multisig, False, False),
                      AccountMeta(PAYER.pubkey(), True, False)])
    facts = inspect(signed(ix))
    assert facts.authority == str(multisig) and not facts.authority_signed
    assert facts.fully_signed


def test_two_transfers_are_refused_even_if_one_pays_the_merchant() -> None:
    elsewhere = Keypair().pubkey()
    for second in (transfer(1), transfer(1, to=elsewhere)):
        err = refusal(inspect, signed(transfer(), second))
        assert err.code is ErrorCode.INVALID_TRANSACTION
        assert err.details == {"reason": Reason.MULTIPLE_TRANSFERS.value, "count": 2}


def test_no_transfer_is_not_spl_transfer() -> None:
    err = refusal(inspect, signed(spl.memo("just a memo")))
    assert err.code is ErrorCode.NOT_SPL_TRANSFER and reason_of(err) == Reason.NO_TRANSFER


def test_plain_transfer_without_mint_is_not_accepted() -> None:
    ix = transfer()
    plain = Instruction(TOKEN, bytes([3]) + (1_000_000).to_bytes(8, "little"),
                        [ix.accounts[0], ix.accounts[2], ix.accounts[3]])
    err = refusal(inspect, signed(plain))
    assert err.code is ErrorCode.NOT_SPL_TRANSFER
    assert reason_of(err) == Reason.UNCHECKED_TRANSFER


def test_transfer_checked_from_an_unknown_program_does_not_count() -> None:
    ix = transfer()
    fake = Instruction(Keypair().pubkey(), bytes(ix.data), ix.accounts)
    err = refusal(inspect, signed(fake))
    assert err.code is ErrorCode.NOT_SPL_TRANSFER


def test_other_programs_are_listed_for_a_gasless_policy() -> None:
    other = Keypair().pubkey()
    facts = inspect(signed(transfer(), Instruction(other, b"", [])))
    assert facts.other_programs == (str(other),)


def test_truncated_transfer_data_is_malformed() -> None:
    ix = transfer()
    short = Instruction(TOKEN, bytes(ix.data)[:9], ix.accounts)
    err = refusal(inspect, signed(short))
    assert err.code is ErrorCode.INVALID_TRANSACTION
    assert reason_of(err) == Reason.MALFORMED_TRANSFER


def test_transfer_accounts_in_a_lookup_table_are_refused() -> None:
    table = AddressLookupTableAccount(Keypair().pubkey(), [ata(MERCHANT), MINT])
    message = MessageV0.try_compile(PAYER.pubkey(), [transfer()], [table], BLOCKHASH)
    assert message.address_table_lookups  # the compiler did use the table
    tx = VersionedTransaction(message, [PAYER])
    err = refusal(inspect, decode_transaction(wire(tx)))
    assert err.code is ErrorCode.INVALID_TRANSACTION
    assert reason_of(err) == Reason.LOOKUP_TABLE_ACCOUNTS


@pytest.mark.parametrize(("data", "reason"), [
    ("not base64!!", Reason.TRANSACTION_NOT_BASE64),
    (base64.b64encode(b"\x01\x02\x03").decode(), Reason.TRANSACTION_UNDECODABLE),
    (base64.b64encode(bytes(MAX_TRANSACTION_BYTES + 1)).decode(), Reason.TRANSACTION_TOO_LARGE),
    (base64.b64encode(bytes(signed(transfer())) + b"\x00").decode(),
     Reason.TRANSACTION_TRAILING_BYTES),
], ids=["not-base64", "garbage", "too-large", "trailing-bytes"])
def test_bad_transaction_bytes_are_invalid_transaction(data: str, reason: Reason) -> None:
    err = refusal(decode_transaction, data)
    assert err.code is ErrorCode.INVALID_TRANSACTION and reason_of(err) == reason


def test_inconsistent_account_indexes_are_refused() -> None:
    good = signed(transfer())
    m = good.message
    assert isinstance(m, MessageV0)
    broken = MessageV0(m.header, m.account_keys[:2], m.recent_blockhash, m.instructions, [])
    tx = VersionedTransaction.populate(broken, list(good.signatures))
    err = refusal(decode_transaction, bytes(tx))
    assert reason_of(err) == Reason.TRANSACTION_UNSANITARY


# --- the requirement rules ----------------------------------------------------------------


def test_a_matching_payment_passes_minimum_and_exact() -> None:
    facts = inspect(signed(transfer(1_000_000), spl.memo("m")))
    check(facts, requirement(memo="m"))
    check(facts, requirement(exact=True, memo=re.compile(r"[a-z]")))
    check(facts, requirement(recipient_owner=None,
                             recipient_token_account=str(ata(MERCHANT))))


def test_over_payment_meets_a_minimum_but_not_an_exact_amount() -> None:
    facts = inspect(signed(transfer(1_000_001)))
    check(facts, requirement())
    err = refusal(check, facts, requirement(exact=True))
    assert err.code is ErrorCode.AMOUNT_MISMATCH
    assert err.details == {"reason": Reason.AMOUNT_NOT_EXACT.value,
                           "requiredAtomic": 1_000_000, "paidAtomic": 1_000_001}


@pytest.mark.parametrize("exact", [False, True])
def test_under_payment(exact: bool) -> None:
    err = refusal(check, inspect(signed(transfer(999_999))), requirement(exact=exact))
    assert err.code is (ErrorCode.AMOUNT_MISMATCH if exact else ErrorCode.AMOUNT_BELOW_MINIMUM)


def test_wrong_mint_recipient_decimals_and_program() -> None:
    other_mint = Keypair().pubkey()
    cases = [
        (transfer(mint=other_mint), {}, ErrorCode.INVALID_TOKEN_MINT, Reason.MINT_NOT_ALLOWED),
        (transfer(to=Keypair().pubkey()), {}, ErrorCode.INVALID_RECIPIENT,
         Reason.RECIPIENT_MISMATCH),
        (transfer(decimals=9), {}, ErrorCode.INVALID_TRANSACTION, Reason.DECIMALS_MISMATCH),
        (transfer(program=TOKEN_2022), {"token_program": str(TOKEN)},
         ErrorCode.INVALID_TOKEN_PROGRAM, Reason.TOKEN_PROGRAM_MISMATCH),
    ]
    for ix, overrides, code, reason in cases:
        err = refusal(check, inspect(signed(ix)), requirement(**overrides))
        assert (err.code, reason_of(err)) == (code, reason)


def test_a_wrong_mint_is_the_mint_whatever_the_destination_says() -> None:
    # The destination is derived from the mint, so the mint is the root cause: a payload
    # hint naming another account than the transfer's must not mask it.
    wrong = inspect(signed(transfer(mint=Keypair().pubkey())))
    for hint in (str(Keypair().pubkey()), wrong.destination, None):
        err = refusal(check, wrong, requirement(), recipient_hint=hint)
        assert (err.code, reason_of(err)) == (ErrorCode.INVALID_TOKEN_MINT,
                                              Reason.MINT_NOT_ALLOWED)
    right = inspect(signed(transfer()))
    err = refusal(check, right, requirement(), recipient_hint=str(Keypair().pubkey()))
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_RECIPIENT,
                                          Reason.RECIPIENT_HINT_MISMATCH)
    check(right, requirement(), recipient_hint=right.destination)


def test_the_verifier_reports_a_wrong_mint_before_the_payload_hint() -> None:
    """Through `SolanaVerifier.prepare`, the offline half a request runs (no RPC call)."""
    verifier = SolanaVerifier("http://127.0.0.1:9", network="devnet", use_websocket=False)
    tx = signed(transfer(mint=Keypair().pubkey()))
    payload = PaymentPayload(0, "solana-spl-transfer", "devnet", SolanaPayload(
        transaction=wire(tx), recipient_token_account=str(Keypair().pubkey())))
    err = refusal(verifier.prepare, payload, requirement())
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_TOKEN_MINT,
                                          Reason.MINT_NOT_ALLOWED)
    assert err.http_status == 402  # invalid_recipient would have been a 400
    good = signed(transfer())
    hinted = PaymentPayload(0, "solana-spl-transfer", "devnet", SolanaPayload(
        transaction=wire(good), recipient_token_account=str(Keypair().pubkey())))
    err = refusal(verifier.prepare, hinted, requirement())
    assert err.code is ErrorCode.INVALID_RECIPIENT


def test_the_verifier_checks_a_transaction_its_caller_decoded() -> None:
    """A resolver that decoded the transaction already hands it over; it is not decoded
    a second time from the payload's text."""
    verifier = SolanaVerifier("http://127.0.0.1:9", network="devnet", use_websocket=False)
    tx = signed(transfer())
    payload = PaymentPayload(0, "solana-spl-transfer", "devnet",
                             SolanaPayload(transaction="not base64 at all"))
    assert refusal(verifier.prepare, payload, requirement()).code is \
        ErrorCode.INVALID_TRANSACTION
    prepared = verifier.prepare(payload, requirement(), tx)
    assert prepared.facts.signature == str(tx.signatures[0]) and not prepared.needs_cosign


def test_an_allowed_second_mint_is_accepted() -> None:
    other = Keypair().pubkey()
    facts = inspect(signed(transfer(mint=other)))
    check(facts, requirement(mints=(str(MINT), str(other))))


def test_memo_rules() -> None:
    no_memo = inspect(signed(transfer()))
    err = refusal(check, no_memo, requirement(memo="cedros:x"))
    assert (err.code, reason_of(err)) == (ErrorCode.MISSING_MEMO, Reason.MEMO_MISSING)
    wrong = inspect(signed(transfer(), spl.memo("cedros:y")))
    err = refusal(check, wrong, requirement(memo="cedros:x"))
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_MEMO, Reason.MEMO_MISMATCH)
    err = refusal(check, wrong, requirement(memo=re.compile(r"cedros:x")))
    assert err.code is ErrorCode.INVALID_MEMO
    check(no_memo, requirement())  # no memo demanded: none needed


def test_signature_rules() -> None:
    message = MessageV0.try_compile(PAYER.pubkey(), [transfer()], [], BLOCKHASH)
    unsigned = inspect(VersionedTransaction.populate(message, [Signature.default()]))
    err = refusal(check, unsigned, requirement())
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_SIGNATURE,
                                          Reason.AUTHORITY_NOT_SIGNER)
    forged = inspect(VersionedTransaction.populate(message, [Keypair().sign_message(b"x")]))
    err = refusal(check, forged, requirement())
    assert (err.code, reason_of(err)) == (ErrorCode.INVALID_SIGNATURE, Reason.SIGNATURE_INVALID)
    server = Keypair().pubkey()
    gasless = MessageV0.try_compile(server, [transfer()], [], BLOCKHASH)
    facts = inspect(VersionedTransaction(gasless, [NullSigner(server), PAYER]))
    err = refusal(check, facts, requirement())
    assert reason_of(err) == Reason.SIGNATURE_MISSING
    check(facts, requirement(), require_all_signatures=False)


def test_a_bad_requirement_is_a_config_error() -> None:
    for overrides in ({"amount_atomic": 0}, {"mints": ()}, {"recipient_owner": None},
                      {"amount_atomic": 2**64}, {"decimals": -1}):
        assert refusal(requirement, **overrides).code is ErrorCode.CONFIG_ERROR


# --- failures -> codes --------------------------------------------------------------------


@pytest.mark.parametrize(("err", "index", "logs", "code"), [
    ({"InstructionError": [2, {"Custom": 1}]}, 2, [], ErrorCode.INSUFFICIENT_FUNDS_TOKEN),
    ({"InstructionError": [2, {"Custom": 3}]}, 2, [], ErrorCode.INVALID_TOKEN_MINT),
    ({"InstructionError": [2, {"Custom": 18}]}, 2, [], ErrorCode.INVALID_TRANSACTION),
    ({"InstructionError": [0, "InvalidAccountData"]}, 0, [], ErrorCode.MISSING_TOKEN_ACCOUNT),
    ({"InstructionError": [0, "IncorrectProgramId"]}, 0, [], ErrorCode.INVALID_TOKEN_PROGRAM),
    ({"InstructionError": [2, {"Custom": 17}]}, 2, [], None),  # frozen: nothing specific
    # Custom 1 from another instruction is not the token program's "insufficient funds".
    ({"InstructionError": [1, {"Custom": 1}]}, 2, [], None),
    ({"InstructionError": [1, {"Custom": 1}]}, 2,
     ["Transfer: insufficient lamports 10, need 2039280"], ErrorCode.INSUFFICIENT_FUNDS_SOL),
    ("AccountNotFound", 0, [], ErrorCode.INSUFFICIENT_FUNDS_SOL),
    ("InsufficientFundsForFee", 0, [], ErrorCode.INSUFFICIENT_FUNDS_SOL),
    ({"InsufficientFundsForRent": {"account_index": 2}}, 0, [],
     ErrorCode.INSUFFICIENT_FUNDS_SOL),
    ("BlockhashNotFound", 0, [], ErrorCode.TRANSACTION_EXPIRED),
    ("SignatureFailure", 0, [], ErrorCode.INVALID_SIGNATURE),
])
def test_transaction_errors_map_to_specific_codes(err: object, index: int, logs: list[str],
                                                  code: ErrorCode | None) -> None:
    assert code_for_transaction_error(err, transfer_index=index, logs=logs) is code


def test_on_chain_failure_carries_the_user_message_and_detail() -> None:
    err = on_chain_failure({"InstructionError": [0, {"Custom": 1}]}, signature="sig",
                           transfer_index=0)
    assert err.code is ErrorCode.INSUFFICIENT_FUNDS_TOKEN
    assert err.message == ("Insufficient token balance. Please add more tokens to your wallet "
                           "and try again.")
    assert err.details == {"reason": Reason.FAILED_ON_CHAIN.value, "signature": "sig",
                           "error": {"InstructionError": [0, {"Custom": 1}]}, "instruction": 0}
    unknown = on_chain_failure({"InstructionError": [3, "GenericError"]}, signature="s",
                               transfer_index=0)
    assert unknown.code is ErrorCode.TRANSACTION_FAILED


def test_gasless_sol_shortage_is_the_servers_problem() -> None:
    err = on_chain_failure("InsufficientFundsForFee", signature="s", transfer_index=2,
                           gasless=True)
    assert err.code is ErrorCode.SERVER_INSUFFICIENT_FUNDS and err.http_status == 500


def test_send_failures_by_rpc_code_and_text() -> None:
    def fail(code: int, message: str, data: object = None) -> ErrorCode:
        return send_failure(RpcCallError("sendTransaction", code, message, data),
                            signature="s", transfer_index=0).code

    assert fail(-32003, "Transaction signature verification failure") \
        is ErrorCode.INVALID_SIGNATURE
    assert fail(-32602, "invalid transaction: bad") is ErrorCode.INVALID_TRANSACTION
    assert fail(-32002, "Transaction simulation failed: Blockhash not found",
                {"err": "BlockhashNotFound", "logs": []}) is ErrorCode.TRANSACTION_EXPIRED
    # A provider that sends only text still gets a specific code.
    assert fail(-32002, "Transaction simulation failed: Error processing Instruction 0: "
                "custom program error: 0x1") is ErrorCode.INSUFFICIENT_FUNDS_TOKEN
    assert fail(-32000, "insufficient lamports for fee") is ErrorCode.INSUFFICIENT_FUNDS_SOL
    assert fail(-32000, "something odd") is ErrorCode.SEND_FAILED
