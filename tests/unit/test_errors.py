"""Error codes, statuses, retry policy, messages and envelope (spec 15, DESIGN §7)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from cedros_pay.core.assets import UnknownAssetError
from cedros_pay.core.errors import (
    ERROR_TABLE,
    CedrosError,
    ErrorCode,
    classify_rpc_error,
    is_account_not_found_error,
    is_already_processed_error,
    is_blockhash_expired_error,
    is_insufficient_funds_sol_error,
    is_insufficient_funds_token_error,
    is_rate_limit_error,
    is_transaction_not_found_error,
)
from cedros_pay.core.money import InvalidMoneyFormatError

PAYMENT_VERIFICATION_402 = [
    "invalid_payment_proof",
    "invalid_signature",
    "invalid_transaction",
    "transaction_not_found",
    "transaction_not_confirmed",
    "transaction_failed",
    "amount_below_minimum",
    "amount_mismatch",
    "insufficient_funds_sol",
    "insufficient_funds_token",
    "invalid_token_mint",
    "not_spl_transfer",
    "missing_token_account",
    "invalid_token_program",
    "missing_memo",
    "invalid_memo",
    "payment_already_used",
    "signature_reused",
    "quote_expired",
    "transaction_expired",
]
RECIPIENT_SENDER = [
    ("invalid_recipient", 400),
    ("invalid_sender", 400),
    ("unauthorized_refund_issuer", 403),
]
VALIDATION_400 = [
    "missing_field",
    "invalid_field",
    "invalid_amount",
    "invalid_wallet",
    "invalid_resource",
    "invalid_coupon",
    "invalid_cart_item",
    "empty_cart",
    "cart_already_paid",
    "refund_already_processed",
]
NOT_FOUND_404 = [
    "resource_not_found",
    "cart_not_found",
    "refund_not_found",
    "product_not_found",
    "coupon_not_found",
    "session_not_found",
]
COUPON_409 = [
    "coupon_expired",
    "coupon_usage_limit_reached",
    "coupon_not_applicable",
    "coupon_wrong_payment_method",
]
EXTERNAL_502 = ["stripe_error", "rpc_error", "network_error"]
INTERNAL_500 = ["internal_error", "database_error", "config_error"]
INTERNAL_MESSAGE_CODES = [
    ("server_insufficient_funds", 500),
    ("send_failed", 402),
    ("send_failed_after_account_creation", 402),
]
# Ours beside spec 15: auth, rate limits, and `not_found` for admin lookups by id (issue 12).
# Idempotency-Key conflicts and an unreachable Redis (issue 18): Stripe's model; a database
# outage (issue 18).
EXTENSIONS = [("unauthorized", 401), ("forbidden", 403), ("rate_limit_exceeded", 429),
              ("not_found", 404), ("idempotency_key_in_use", 409),
              ("idempotency_key_reused", 422), ("service_unavailable", 503),
              ("database_unavailable", 503)]

SPEC15_STATUS = (
    [(c, 402) for c in PAYMENT_VERIFICATION_402]
    + RECIPIENT_SENDER
    + [(c, 400) for c in VALIDATION_400]
    + [(c, 404) for c in NOT_FOUND_404]
    + [(c, 409) for c in COUPON_409]
    + [(c, 502) for c in EXTERNAL_502]
    + [(c, 500) for c in INTERNAL_500]
    + INTERNAL_MESSAGE_CODES
)


@pytest.mark.parametrize(("code", "status"), SPEC15_STATUS + EXTENSIONS)
def test_each_code_has_its_spec15_http_status(code: str, status: int) -> None:
    assert ErrorCode(code).http_status == status
    assert CedrosError(ErrorCode(code)).http_status == status


def test_every_spec15_code_exists_and_nothing_else_but_the_auth_extensions() -> None:
    expected = {c for c, _ in SPEC15_STATUS} | {c for c, _ in EXTENSIONS}
    assert {c.value for c in ErrorCode} == expected
    assert len(SPEC15_STATUS) == 52  # 49 exported codes + 3 internal message codes


def test_every_code_has_a_table_row() -> None:
    assert set(ERROR_TABLE) == set(ErrorCode)
    assert all(spec.message for spec in ERROR_TABLE.values())


@pytest.mark.parametrize(
    ("code", "status"),
    [("invalid_recipient", 400), ("amount_below_minimum", 402)],
)
def test_design_decisions_on_disputed_statuses(code: str, status: int) -> None:
    assert ErrorCode(code).http_status == status


RETRYABLE = {"rpc_error", "network_error", "stripe_error", "transaction_not_confirmed"}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_only_spec15_transient_codes_are_retryable(code: ErrorCode) -> None:
    # Our extensions that waiting cures: a rate limit (Retry-After), a key whose first
    # request is still running, a backing service or the database that is down.
    transient = {"rate_limit_exceeded", "idempotency_key_in_use", "service_unavailable",
                 "database_unavailable"}
    assert code.retryable is (code.value in RETRYABLE | transient)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "insufficient_funds_token",
            "Insufficient token balance. Please add more tokens to your wallet and try again.",
        ),
        (
            "insufficient_funds_sol",
            "Insufficient SOL for transaction fees. Please add some SOL to your wallet and "
            "try again.",
        ),
        (
            "server_insufficient_funds",
            "Service temporarily unavailable due to insufficient server funds. Please try "
            "again later or contact support.",
        ),
        (
            "amount_below_minimum",
            "Payment amount is less than required. Please check the payment amount and try again.",
        ),
        ("invalid_signature", "Invalid transaction signature. Please try again."),
        (
            "invalid_memo",
            "Invalid payment memo. Please use the payment details provided by the quote.",
        ),
        (
            "invalid_token_mint",
            "Wrong token used for payment. Please use the correct token specified in the quote.",
        ),
        (
            "invalid_recipient",
            "Payment sent to wrong address. Please check the recipient address and try again.",
        ),
        (
            "missing_token_account",
            "Token account not found. Please create a token account for this token first.",
        ),
        (
            "send_failed",
            "Transaction failed to send. Please check your wallet balance and try again.",
        ),
        (
            "send_failed_after_account_creation",
            "Transaction failed after creating token account. Please check the blockchain "
            "explorer and retry if needed.",
        ),
        (
            "transaction_not_found",
            "Transaction not found on the blockchain. It may have been dropped. Please try again.",
        ),
        (
            "transaction_expired",
            "Transaction timed out. Please check the blockchain explorer and try again if needed.",
        ),
        (
            "transaction_failed",
            "Transaction failed on the blockchain. Check your wallet for details. You may need "
            "to adjust your transaction settings or add more SOL for fees.",
        ),
        (
            "payment_already_used",
            "This payment has already been processed. Each payment can only be used once.",
        ),
        (
            "amount_mismatch",
            "Payment amount does not match the required amount. Please pay the exact amount shown.",
        ),
    ],
)
def test_user_friendly_messages_match_spec15(code: str, message: str) -> None:
    assert ErrorCode(code).user_message == message
    assert CedrosError(ErrorCode(code)).message == message


def test_envelope_has_code_message_details_and_retryable() -> None:
    err = CedrosError(
        ErrorCode.INSUFFICIENT_FUNDS_TOKEN,
        "payment verification failed",
        {"required_amount": 1_000_000, "available_balance": 500_000},
    )
    assert err.to_envelope() == {
        "error": {
            "code": "insufficient_funds_token",
            "message": "payment verification failed",
            "retryable": False,
            "details": {"required_amount": 1_000_000, "available_balance": 500_000},
        }
    }
    json.dumps(err.to_envelope())


def test_envelope_details_is_an_empty_object_when_there_are_none() -> None:
    envelope = CedrosError(ErrorCode.RPC_ERROR, "node down").to_envelope()
    assert envelope == {
        "error": {"code": "rpc_error", "message": "node down", "retryable": True, "details": {}}
    }


def test_missing_message_falls_back_to_the_user_message() -> None:
    err = CedrosError(ErrorCode.CART_NOT_FOUND)
    assert err.message == ErrorCode.CART_NOT_FOUND.user_message
    assert str(err) == err.message
    assert err.details is None


def test_error_keeps_a_copy_of_details() -> None:
    details = {"resourceId": "product-1"}
    err = CedrosError(ErrorCode.PRODUCT_NOT_FOUND, "no such product", details)
    details["resourceId"] = "changed"
    assert err.details == {"resourceId": "product-1"}
    assert err.code is ErrorCode.PRODUCT_NOT_FOUND
    assert not err.retryable


@pytest.mark.parametrize(
    "err",
    [
        CedrosError(ErrorCode.EMPTY_CART, "no items", {"items": 0}),
        UnknownAssetError("DOGE"),
        InvalidMoneyFormatError("bad amount"),
    ],
)
def test_errors_survive_pickling_and_copying(err: CedrosError) -> None:
    for clone in (pickle.loads(pickle.dumps(err)), copy.deepcopy(err)):
        assert type(clone) is type(err)
        assert clone.to_envelope() == err.to_envelope()


def test_error_codes_serialise_as_their_wire_value() -> None:
    assert json.dumps({"code": ErrorCode.EMPTY_CART}) == '{"code": "empty_cart"}'
    assert f"{ErrorCode.EMPTY_CART}" == "empty_cart"


# --- smart error detection (spec 15 patterns, spec 22 detection table) ----------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # spec 15 "Smart Error Detection" table
        ("custom program error: 0x1", ErrorCode.INSUFFICIENT_FUNDS_TOKEN),
        ("Transfer: insufficient lamports 0, need 2039280", ErrorCode.INSUFFICIENT_FUNDS_SOL),
        ("Account not found", ErrorCode.MISSING_TOKEN_ACCOUNT),
        (
            "Transaction simulation failed: Error processing Instruction 2: "
            "custom program error: 0x1",
            ErrorCode.INSUFFICIENT_FUNDS_TOKEN,
        ),
        ("Blockhash not found", ErrorCode.TRANSACTION_EXPIRED),
        # spec 22 "Error Pattern Detection"
        ("BlockhashNotFound", ErrorCode.TRANSACTION_EXPIRED),
        (
            "Transaction simulation failed: Insufficient funds for fee",
            ErrorCode.INSUFFICIENT_FUNDS_SOL,
        ),
        ("insufficient funds", ErrorCode.INSUFFICIENT_FUNDS_SOL),
        ("Program log: Error: insufficient funds", ErrorCode.INSUFFICIENT_FUNDS_TOKEN),
        ("insufficient token balance", ErrorCode.INSUFFICIENT_FUNDS_TOKEN),
        ('{"err": {"InstructionError": [2, {"Custom": 1}]}}', ErrorCode.INSUFFICIENT_FUNDS_TOKEN),
        ("AccountNotFound", ErrorCode.MISSING_TOKEN_ACCOUNT),
        ("HTTP 429 Too Many Requests", ErrorCode.RPC_ERROR),
        ("Too many requests for a specific RPC call", ErrorCode.RPC_ERROR),
        ("transaction not found", ErrorCode.TRANSACTION_NOT_FOUND),
        ("something else entirely", None),
        ("Transaction already processed", None),
        ("custom program error: 0x10", None),
        ('{"Custom": 12}', None),
    ],
)
def test_classify_rpc_error(text: str, code: ErrorCode | None) -> None:
    assert classify_rpc_error(text) is code


def test_detection_predicates() -> None:
    assert is_already_processed_error("AlreadyProcessed")
    assert is_already_processed_error("This transaction has already been processed")
    assert is_blockhash_expired_error("BlockhashNotFound")
    assert is_account_not_found_error("AccountNotFound")
    assert is_transaction_not_found_error("Transaction not found")
    assert is_rate_limit_error("429")
    assert not is_rate_limit_error("4290 lamports")
    assert is_insufficient_funds_token_error("custom program error: 0x1")
    assert not is_insufficient_funds_token_error("insufficient lamports")
    assert is_insufficient_funds_sol_error("insufficient lamports")
    assert not is_insufficient_funds_sol_error("Program log: Error: insufficient funds")
