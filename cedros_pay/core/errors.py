"""Error codes, their HTTP status / retry policy, and the one exception type (spec 15).

Every failure that reaches a client is a `CedrosError` carrying an `ErrorCode`; REST renders
`to_envelope()` with `http_status`, GraphQL puts the code in `extensions.code`. Status codes
follow spec 15's categories (DESIGN §7), not the reference server's per-code switch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple


class ErrorCode(StrEnum):
    """Machine-readable error codes; the value is what goes on the wire."""

    # Payment verification (402)
    INVALID_PAYMENT_PROOF = "invalid_payment_proof"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_TRANSACTION = "invalid_transaction"
    TRANSACTION_NOT_FOUND = "transaction_not_found"
    TRANSACTION_NOT_CONFIRMED = "transaction_not_confirmed"
    TRANSACTION_FAILED = "transaction_failed"
    AMOUNT_BELOW_MINIMUM = "amount_below_minimum"
    AMOUNT_MISMATCH = "amount_mismatch"
    INSUFFICIENT_FUNDS_SOL = "insufficient_funds_sol"
    INSUFFICIENT_FUNDS_TOKEN = "insufficient_funds_token"
    INVALID_TOKEN_MINT = "invalid_token_mint"
    NOT_SPL_TRANSFER = "not_spl_transfer"
    MISSING_TOKEN_ACCOUNT = "missing_token_account"
    INVALID_TOKEN_PROGRAM = "invalid_token_program"
    MISSING_MEMO = "missing_memo"
    INVALID_MEMO = "invalid_memo"
    PAYMENT_ALREADY_USED = "payment_already_used"
    SIGNATURE_REUSED = "signature_reused"
    QUOTE_EXPIRED = "quote_expired"
    TRANSACTION_EXPIRED = "transaction_expired"
    # Recipient / sender (400, 403)
    INVALID_RECIPIENT = "invalid_recipient"
    INVALID_SENDER = "invalid_sender"
    UNAUTHORIZED_REFUND_ISSUER = "unauthorized_refund_issuer"
    # Validation (400)
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_WALLET = "invalid_wallet"
    INVALID_RESOURCE = "invalid_resource"
    INVALID_COUPON = "invalid_coupon"
    INVALID_CART_ITEM = "invalid_cart_item"
    EMPTY_CART = "empty_cart"
    CART_ALREADY_PAID = "cart_already_paid"
    REFUND_ALREADY_PROCESSED = "refund_already_processed"
    # Not found (404)
    RESOURCE_NOT_FOUND = "resource_not_found"
    CART_NOT_FOUND = "cart_not_found"
    REFUND_NOT_FOUND = "refund_not_found"
    PRODUCT_NOT_FOUND = "product_not_found"
    COUPON_NOT_FOUND = "coupon_not_found"
    SESSION_NOT_FOUND = "session_not_found"
    NOT_FOUND = "not_found"  # an admin lookup by id (webhook deliveries, issue 12)
    # Coupon conflicts (409)
    COUPON_EXPIRED = "coupon_expired"
    COUPON_USAGE_LIMIT_REACHED = "coupon_usage_limit_reached"
    COUPON_NOT_APPLICABLE = "coupon_not_applicable"
    COUPON_WRONG_PAYMENT_METHOD = "coupon_wrong_payment_method"
    # Idempotency-Key conflicts (ours, Stripe's model; spec 10 names none)
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"  # 409: the first is still running
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"  # 422: same key, another request
    # External services (502)
    STRIPE_ERROR = "stripe_error"
    RPC_ERROR = "rpc_error"
    NETWORK_ERROR = "network_error"
    # Internal (500)
    INTERNAL_ERROR = "internal_error"
    DATABASE_ERROR = "database_error"
    CONFIG_ERROR = "config_error"
    # A backing service the request needs is down (ours: Redis for Idempotency-Key); 503
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Spec 15 has no 503 code; a database outage is neither the client's fault nor a bug,
    # and the client may retry once the server has its database back.
    DATABASE_UNAVAILABLE = "database_unavailable"
    # Internal message codes (spec 15 "Internal Error Codes")
    SERVER_INSUFFICIENT_FUNDS = "server_insufficient_funds"
    SEND_FAILED = "send_failed"
    SEND_FAILED_AFTER_ACCOUNT_CREATION = "send_failed_after_account_creation"
    # Spec 15 names the 401/403/429 categories but no codes; DESIGN §6 uses `unauthorized`.
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"

    @property
    def http_status(self) -> int:
        return ERROR_TABLE[self].http_status

    @property
    def retryable(self) -> bool:
        return ERROR_TABLE[self].retryable

    @property
    def user_message(self) -> str:
        return ERROR_TABLE[self].message


class ErrorSpec(NamedTuple):
    """How one code behaves: HTTP status, whether a client may retry, what to show a user."""

    http_status: int
    retryable: bool
    message: str


def _spec(status: int, message: str, *, retryable: bool = False) -> ErrorSpec:
    return ErrorSpec(status, retryable, message)


_E = ErrorCode

# Messages in quotes are spec 15's "User-Friendly Error Messages"; the rest are ours.
ERROR_TABLE: Mapping[ErrorCode, ErrorSpec] = MappingProxyType(
    {
        _E.INVALID_PAYMENT_PROOF: _spec(402, "Invalid payment proof. Please try again."),
        _E.INVALID_SIGNATURE: _spec(402, "Invalid transaction signature. Please try again."),
        _E.INVALID_TRANSACTION: _spec(402, "Invalid transaction. Please try again."),
        _E.TRANSACTION_NOT_FOUND: _spec(
            402,
            "Transaction not found on the blockchain. It may have been dropped. Please try again.",
        ),
        _E.TRANSACTION_NOT_CONFIRMED: _spec(
            402, "Transaction is not confirmed yet. Please wait and try again.", retryable=True
        ),
        _E.TRANSACTION_FAILED: _spec(
            402,
            "Transaction failed on the blockchain. Check your wallet for details. You may "
            "need to adjust your transaction settings or add more SOL for fees.",
        ),
        _E.AMOUNT_BELOW_MINIMUM: _spec(
            402,
            "Payment amount is less than required. Please check the payment amount and try again.",
        ),
        _E.AMOUNT_MISMATCH: _spec(
            402,
            "Payment amount does not match the required amount. Please pay the exact amount shown.",
        ),
        _E.INSUFFICIENT_FUNDS_SOL: _spec(
            402,
            "Insufficient SOL for transaction fees. Please add some SOL to your wallet and "
            "try again.",
        ),
        _E.INSUFFICIENT_FUNDS_TOKEN: _spec(
            402,
            "Insufficient token balance. Please add more tokens to your wallet and try again.",
        ),
        _E.INVALID_TOKEN_MINT: _spec(
            402,
            "Wrong token used for payment. Please use the correct token specified in the quote.",
        ),
        _E.NOT_SPL_TRANSFER: _spec(402, "The transaction is not a token transfer."),
        _E.MISSING_TOKEN_ACCOUNT: _spec(
            402, "Token account not found. Please create a token account for this token first."
        ),
        _E.INVALID_TOKEN_PROGRAM: _spec(402, "The transaction uses an unsupported token program."),
        _E.MISSING_MEMO: _spec(402, "The payment memo is missing."),
        _E.INVALID_MEMO: _spec(
            402, "Invalid payment memo. Please use the payment details provided by the quote."
        ),
        _E.PAYMENT_ALREADY_USED: _spec(
            402,
            "This payment has already been processed. Each payment can only be used once.",
        ),
        _E.SIGNATURE_REUSED: _spec(402, "This transaction signature has already been processed."),
        _E.QUOTE_EXPIRED: _spec(402, "The payment quote has expired. Please request a new one."),
        _E.TRANSACTION_EXPIRED: _spec(
            402,
            "Transaction timed out. Please check the blockchain explorer and try again if needed.",
        ),
        _E.INVALID_RECIPIENT: _spec(
            400,
            "Payment sent to wrong address. Please check the recipient address and try again.",
        ),
        _E.INVALID_SENDER: _spec(400, "Invalid sender address."),
        _E.UNAUTHORIZED_REFUND_ISSUER: _spec(403, "Not authorized to issue refunds."),
        _E.MISSING_FIELD: _spec(400, "A required field is missing."),
        _E.INVALID_FIELD: _spec(400, "A field has an invalid value."),
        _E.INVALID_AMOUNT: _spec(400, "Invalid amount."),
        _E.INVALID_WALLET: _spec(400, "Invalid wallet address."),
        _E.INVALID_RESOURCE: _spec(400, "Invalid resource."),
        _E.INVALID_COUPON: _spec(400, "Invalid coupon code."),
        _E.INVALID_CART_ITEM: _spec(400, "Invalid cart item."),
        _E.EMPTY_CART: _spec(400, "The cart has no items."),
        _E.CART_ALREADY_PAID: _spec(400, "This cart has already been paid."),
        _E.REFUND_ALREADY_PROCESSED: _spec(400, "This refund has already been processed."),
        _E.RESOURCE_NOT_FOUND: _spec(404, "Resource not found."),
        _E.CART_NOT_FOUND: _spec(404, "Cart not found."),
        _E.REFUND_NOT_FOUND: _spec(404, "Refund not found."),
        _E.PRODUCT_NOT_FOUND: _spec(404, "Product not found."),
        _E.COUPON_NOT_FOUND: _spec(404, "Coupon not found."),
        _E.SESSION_NOT_FOUND: _spec(404, "Checkout session not found."),
        _E.NOT_FOUND: _spec(404, "Not found."),
        _E.COUPON_EXPIRED: _spec(409, "This coupon has expired."),
        _E.COUPON_USAGE_LIMIT_REACHED: _spec(409, "This coupon has reached its usage limit."),
        _E.COUPON_NOT_APPLICABLE: _spec(409, "This coupon does not apply to this purchase."),
        _E.COUPON_WRONG_PAYMENT_METHOD: _spec(
            409, "This coupon is not valid for this payment method."
        ),
        _E.IDEMPOTENCY_KEY_IN_USE: _spec(
            409, "A request with this Idempotency-Key is still being processed. Please "
            "retry shortly.", retryable=True
        ),
        _E.IDEMPOTENCY_KEY_REUSED: _spec(
            422, "This Idempotency-Key was already used for a different request. Use a new "
            "key for a new request."
        ),
        _E.STRIPE_ERROR: _spec(
            502, "The card payment service failed. Please try again.", retryable=True
        ),
        _E.RPC_ERROR: _spec(
            502, "The Solana network could not be reached. Please try again.", retryable=True
        ),
        _E.NETWORK_ERROR: _spec(502, "A network error occurred. Please try again.", retryable=True),
        _E.INTERNAL_ERROR: _spec(500, "Internal server error."),
        _E.DATABASE_ERROR: _spec(500, "Internal server error."),
        _E.CONFIG_ERROR: _spec(500, "Server configuration error."),
        _E.SERVICE_UNAVAILABLE: _spec(
            503, "The service is temporarily unavailable. Please try again shortly.",
            retryable=True
        ),
        _E.DATABASE_UNAVAILABLE: _spec(
            503, "The service is temporarily unavailable. Please try again shortly.",
            retryable=True,
        ),
        _E.SERVER_INSUFFICIENT_FUNDS: _spec(
            500,
            "Service temporarily unavailable due to insufficient server funds. Please try "
            "again later or contact support.",
        ),
        _E.SEND_FAILED: _spec(
            402,
            "Transaction failed to send. Please check your wallet balance and try again.",
        ),
        _E.SEND_FAILED_AFTER_ACCOUNT_CREATION: _spec(
            402,
            "Transaction failed after creating token account. Please check the blockchain "
            "explorer and retry if needed.",
        ),
        _E.UNAUTHORIZED: _spec(401, "Authentication required."),
        _E.FORBIDDEN: _spec(403, "Not allowed."),
        _E.RATE_LIMIT_EXCEEDED: _spec(
            429, "Too many requests. Please slow down and try again.", retryable=True
        ),
    }
)


class CedrosError(Exception):
    """The one failure type that crosses layers: a spec code, a message, optional details."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message if message else code.user_message
        self.details: dict[str, Any] | None = dict(details) if details else None
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.code.http_status

    @property
    def retryable(self) -> bool:
        return self.code.retryable

    def to_envelope(self) -> dict[str, Any]:
        """The spec 15 JSON body: `code`, `message`, `details` (`{}` when there are none, as
        spec 15 shows it), plus `retryable`, which the Cedros React client reads."""
        return {
            "error": {
                "code": self.code.value,
                "message": self.message,
                "retryable": self.retryable,
                "details": dict(self.details) if self.details else {},
            }
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other constructor arguments, so rebuild from the stored fields.
        return (_rebuild, (type(self), self.code, self.message, self.details))

    def __repr__(self) -> str:
        return f"CedrosError({self.code.value!r}, {self.message!r}, {self.details!r})"


def _rebuild(
    cls: type[CedrosError], code: ErrorCode, message: str, details: dict[str, Any] | None
) -> CedrosError:
    err = cls.__new__(cls)
    CedrosError.__init__(err, code, message, details)
    return err


# --- Smart RPC error detection (spec 15 / spec 22): pure text classification. ---------------

_CUSTOM_ERROR_1 = re.compile(r"custom program error: 0x1\b|\"custom\"\s*:\s*1\b")
_SOL_SPECIFIC = (
    "insufficient lamports",
    "insufficient funds for fee",
    "insufficient funds for rent",
    "found no record of a prior credit",
)


def is_insufficient_funds_sol_error(text: str) -> bool:
    """The payer (or fee payer) lacks SOL; the generic 'insufficient funds' counts as SOL."""
    s = text.lower()
    if any(p in s for p in _SOL_SPECIFIC):
        return True
    return "insufficient funds" in s and not is_insufficient_funds_token_error(text)


def is_insufficient_funds_token_error(text: str) -> bool:
    """The SPL token program refused the transfer for lack of balance (custom error 0x1)."""
    s = text.lower()
    if any(p in s for p in _SOL_SPECIFIC):
        return False
    return (
        bool(_CUSTOM_ERROR_1.search(s))
        or "error: insufficient funds" in s
        or ("insufficient" in s and "token" in s)
    )


def is_account_not_found_error(text: str) -> bool:
    s = text.lower()
    return "accountnotfound" in s or "account not found" in s


def is_transaction_not_found_error(text: str) -> bool:
    s = text.lower()
    return "transaction not found" in s or "transactionnotfound" in s


def is_blockhash_expired_error(text: str) -> bool:
    s = text.lower()
    return "blockhashnotfound" in s or "blockhash not found" in s


def is_already_processed_error(text: str) -> bool:
    """The transaction was already submitted; callers treat this as 'sent', not a failure."""
    s = text.lower()
    return "alreadyprocessed" in s or "already been processed" in s


def is_rate_limit_error(text: str) -> bool:
    s = text.lower()
    return "too many requests" in s or "rate limit" in s or bool(re.search(r"\b429\b", s))


def classify_rpc_error(text: str) -> ErrorCode | None:
    """Map an RPC / simulation error text to the most specific code, or None if unknown.

    Order matters: SOL-specific phrases win over token ones, which win over the generic
    'insufficient funds'. 'Already processed' is deliberately not mapped (it is not a failure).
    """
    if is_insufficient_funds_token_error(text):
        return ErrorCode.INSUFFICIENT_FUNDS_TOKEN
    if is_insufficient_funds_sol_error(text):
        return ErrorCode.INSUFFICIENT_FUNDS_SOL
    if is_blockhash_expired_error(text):
        return ErrorCode.TRANSACTION_EXPIRED
    if is_transaction_not_found_error(text):
        return ErrorCode.TRANSACTION_NOT_FOUND
    if is_account_not_found_error(text):
        return ErrorCode.MISSING_TOKEN_ACCOUNT
    if is_rate_limit_error(text):
        return ErrorCode.RPC_ERROR
    return None
