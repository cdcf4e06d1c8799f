"""What a failed payment transaction means, as a spec 15 code.

Two sources: a node refusing `sendTransaction` (preflight simulation, signature check) and
a transaction that landed with an error (`getSignatureStatuses` / `signatureNotification`
`err`). Both carry Solana's structured `TransactionError`, which is read first because it
says *which* instruction failed: SPL custom error 1 means "insufficient funds" only when
the token transfer raised it (the System program's custom error 1 means something else).
Text classification (`core.errors.classify_rpc_error`) is the fallback, for providers that
send only a message.

| Solana error                                         | code                      |
| ---------------------------------------------------- | ------------------------- |
| transfer: Custom 1 (InsufficientFunds)               | insufficient_funds_token  |
| transfer: Custom 2/3 (InvalidMint, MintMismatch)     | invalid_token_mint        |
| transfer: Custom 4 (OwnerMismatch)                   | invalid_sender            |
| transfer: Custom 9, InvalidAccountData, Uninitialized| missing_token_account     |
| transfer: Custom 18 (MintDecimalsMismatch)           | invalid_transaction       |
| transfer: IncorrectProgramId                         | invalid_token_program     |
| transfer: MissingRequiredSignature                   | invalid_signature         |
| AccountNotFound, InsufficientFundsForFee / ForRent   | insufficient_funds_sol    |
|   (server_insufficient_funds when a server pays fees)|                           |
| BlockhashNotFound                                    | transaction_expired       |
| SignatureFailure, RPC -32003                         | invalid_signature         |
| RPC -32602 (node cannot decode it)                   | invalid_transaction       |
| other instruction: text of its logs, else            | transaction_failed        |
| anything else: classify_rpc_error(text), else        | transaction_failed (on    |
|                                                      | chain) / send_failed      |

Mapped errors carry the code's user message (spec 15 "User-Friendly Error Messages");
the Solana detail goes into `details` (`error`, `instruction`, `rpcMessage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cedros_pay.core.errors import (
    CedrosError,
    ErrorCode,
    classify_rpc_error,
    is_already_processed_error,
)
from cedros_pay.integrations.solana.rpc import (
    INVALID_PARAMS,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    SIGNATURE_VERIFICATION_FAILURE,
    RpcCallError,
)
from cedros_pay.x402.reasons import Reason

# SPL Token (and Token-2022) TokenError discriminants raised by TransferChecked.
SPL_TOKEN_ERRORS: Mapping[int, ErrorCode] = {
    1: ErrorCode.INSUFFICIENT_FUNDS_TOKEN,
    2: ErrorCode.INVALID_TOKEN_MINT,
    3: ErrorCode.INVALID_TOKEN_MINT,
    4: ErrorCode.INVALID_SENDER,
    9: ErrorCode.MISSING_TOKEN_ACCOUNT,
    18: ErrorCode.INVALID_TRANSACTION,
}
_TRANSFER_INSTRUCTION_ERRORS: Mapping[str, ErrorCode] = {
    "InvalidAccountData": ErrorCode.MISSING_TOKEN_ACCOUNT,
    "UninitializedAccount": ErrorCode.MISSING_TOKEN_ACCOUNT,
    "IncorrectProgramId": ErrorCode.INVALID_TOKEN_PROGRAM,
    "MissingRequiredSignature": ErrorCode.INVALID_SIGNATURE,
    "InsufficientFunds": ErrorCode.INSUFFICIENT_FUNDS_TOKEN,
}
_TRANSACTION_ERRORS: Mapping[str, ErrorCode] = {
    "AccountNotFound": ErrorCode.INSUFFICIENT_FUNDS_SOL,  # the fee payer was never funded
    "InsufficientFundsForFee": ErrorCode.INSUFFICIENT_FUNDS_SOL,
    "InsufficientFundsForRent": ErrorCode.INSUFFICIENT_FUNDS_SOL,
    "BlockhashNotFound": ErrorCode.TRANSACTION_EXPIRED,
    "SignatureFailure": ErrorCode.INVALID_SIGNATURE,
    "MissingSignatureForFee": ErrorCode.INVALID_SIGNATURE,
}


def is_already_processed(exc: RpcCallError) -> bool:
    """The node has this signature already: the payment was sent before (idempotent)."""
    return exc.err == "AlreadyProcessed" or is_already_processed_error(exc.message)


def code_for_transaction_error(err: Any, *, transfer_index: int | None,
                               logs: Sequence[str] = (), message: str = "") -> ErrorCode | None:
    """The specific code for a TransactionError, or None when nothing specific applies."""
    name: str | None = None
    if isinstance(err, str):
        name = err
    elif isinstance(err, dict) and err:
        name = str(next(iter(err)))
    if name is not None and name in _TRANSACTION_ERRORS:
        return _TRANSACTION_ERRORS[name]
    if name == "InstructionError" and isinstance(err, dict):
        detail = err["InstructionError"]
        if isinstance(detail, list) and len(detail) == 2:
            index, inner = detail
            if index == transfer_index:
                if isinstance(inner, dict) and isinstance(inner.get("Custom"), int):
                    return SPL_TOKEN_ERRORS.get(inner["Custom"])
                if isinstance(inner, str):
                    return _TRANSFER_INSTRUCTION_ERRORS.get(inner)
                return None
            # Another instruction (ATA creation, compute budget): only its logs may tell,
            # because its custom error numbers are not the token program's.
            return classify_rpc_error("\n".join(logs)) if logs else None
    text = "\n".join([message, json.dumps(err) if err is not None else "", *logs])
    return classify_rpc_error(text)


def on_chain_failure(err: Any, *, signature: str, transfer_index: int | None,
                     gasless: bool = False) -> CedrosError:
    """A transaction that landed (or was dropped) with `err`."""
    code = code_for_transaction_error(err, transfer_index=transfer_index)
    return _error(code or ErrorCode.TRANSACTION_FAILED, Reason.FAILED_ON_CHAIN, gasless,
                  {"signature": signature, "error": err, **_instruction(err)})


def send_failure(exc: RpcCallError, *, signature: str, transfer_index: int | None,
                 gasless: bool = False) -> CedrosError:
    """A node refusing sendTransaction (already-processed must be handled before)."""
    details: dict[str, Any] = {"signature": signature, "rpcCode": exc.code,
                               "rpcMessage": exc.message[:300]}
    if exc.code == SIGNATURE_VERIFICATION_FAILURE:
        return _error(ErrorCode.INVALID_SIGNATURE, Reason.REJECTED_BY_NODE, gasless, details)
    if exc.code == INVALID_PARAMS:
        return _error(ErrorCode.INVALID_TRANSACTION, Reason.REJECTED_BY_NODE, gasless, details)
    if exc.code == SEND_TRANSACTION_PREFLIGHT_FAILURE:
        code = code_for_transaction_error(exc.err, transfer_index=transfer_index,
                                          logs=exc.logs, message=exc.message)
        details.update({"error": exc.err, **_instruction(exc.err)})
        return _error(code or ErrorCode.TRANSACTION_FAILED, Reason.SIMULATION_FAILED, gasless,
                      details)
    code = classify_rpc_error(exc.text)
    return _error(code or ErrorCode.SEND_FAILED, Reason.REJECTED_BY_NODE, gasless, details)


def _instruction(err: Any) -> dict[str, Any]:
    if isinstance(err, dict) and isinstance(err.get("InstructionError"), list):
        return {"instruction": err["InstructionError"][0]}
    return {}


def _error(code: ErrorCode, reason: Reason, gasless: bool,
           details: dict[str, Any]) -> CedrosError:
    if gasless and code is ErrorCode.INSUFFICIENT_FUNDS_SOL:
        code = ErrorCode.SERVER_INSUFFICIENT_FUNDS  # the server's wallet pays the fees
    return CedrosError(code, None, {"reason": reason.value, **details})
