"""Why an x402 payment was refused: the `reason` a CedrosError carries in its details.

The spec code (`ErrorCode`) is what a client branches on; several conditions share a code
(an undecodable header and a wrong scheme are both `invalid_payment_proof`), so every
refusal of a payment also sets `details["reason"]` to one of these constants. Tests
and logs match on the reason, never on message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NoReturn

from cedros_pay.core.errors import CedrosError, ErrorCode


class Reason(StrEnum):
    # X-PAYMENT header (http.py, cedros_v0.py)
    HEADER_EMPTY = "header_empty"
    HEADER_TOO_LARGE = "header_too_large"
    HEADER_NOT_BASE64 = "header_not_base64"
    HEADER_NOT_UTF8 = "header_not_utf8"
    HEADER_NOT_JSON = "header_not_json"
    HEADER_NOT_OBJECT = "header_not_object"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_SCHEME = "unsupported_scheme"
    INVALID_RESOURCE_TYPE = "invalid_resource_type"
    INVALID_ADDRESS = "invalid_address"
    INVALID_SIGNATURE_TEXT = "invalid_signature_text"
    INVALID_METADATA = "invalid_metadata"
    NETWORK_MISMATCH = "network_mismatch"
    # Transaction bytes and shape (integrations/solana/transaction.py)
    TRANSACTION_NOT_BASE64 = "transaction_not_base64"
    TRANSACTION_TOO_LARGE = "transaction_too_large"
    TRANSACTION_UNDECODABLE = "transaction_undecodable"
    TRANSACTION_TRAILING_BYTES = "transaction_trailing_bytes"
    TRANSACTION_UNSANITARY = "transaction_unsanitary"
    NO_TRANSFER = "no_transfer"
    UNCHECKED_TRANSFER = "unchecked_transfer"
    MULTIPLE_TRANSFERS = "multiple_transfers"
    MALFORMED_TRANSFER = "malformed_transfer"
    LOOKUP_TABLE_ACCOUNTS = "lookup_table_accounts"
    # Requirement checks (integrations/solana/verifier.check)
    TOKEN_PROGRAM_MISMATCH = "token_program_mismatch"
    MINT_NOT_ALLOWED = "mint_not_allowed"
    DECIMALS_MISMATCH = "decimals_mismatch"
    RECIPIENT_MISMATCH = "recipient_mismatch"
    RECIPIENT_HINT_MISMATCH = "recipient_hint_mismatch"
    AMOUNT_BELOW_MINIMUM = "amount_below_minimum"
    AMOUNT_NOT_EXACT = "amount_not_exact"
    MEMO_MISSING = "memo_missing"
    MEMO_MISMATCH = "memo_mismatch"
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    SIGNATURE_MISMATCH = "signature_mismatch"
    AUTHORITY_NOT_SIGNER = "authority_not_signer"
    FEE_PAYER_MISMATCH = "fee_payer_mismatch"
    GASLESS_UNAVAILABLE = "gasless_unavailable"
    # Gasless co-signing (integrations/solana/cosigner.py): what the server's fee payer
    # refuses to sign
    FEE_PAYER_NOT_SERVER = "fee_payer_not_server"
    FEE_PAYER_MISUSED = "fee_payer_misused"
    FEE_TOO_HIGH = "fee_too_high"
    UNEXPECTED_PROGRAM = "unexpected_program"
    # Submission and confirmation (integrations/solana/verifier.settle)
    SIMULATION_FAILED = "simulation_failed"
    REJECTED_BY_NODE = "rejected_by_node"
    FAILED_ON_CHAIN = "failed_on_chain"
    BLOCKHASH_EXPIRED = "blockhash_expired"
    NOT_CONFIRMED = "not_confirmed"
    RPC_UNAVAILABLE = "rpc_unavailable"


def refuse(reason: Reason, message: str, details: Mapping[str, Any] | None = None) -> NoReturn:
    """A malformed payment header: `invalid_payment_proof` with its reason."""
    raise CedrosError(ErrorCode.INVALID_PAYMENT_PROOF, message,
                      {"reason": reason.value, **(details or {})})


def missing(name: str) -> NoReturn:
    refuse(Reason.MISSING_FIELD, f"the X-PAYMENT header lacks {name}", {"field": name})


def wrong_type(name: str, expected: str) -> NoReturn:
    refuse(Reason.WRONG_TYPE, f"{name} must be {expected}", {"field": name})
