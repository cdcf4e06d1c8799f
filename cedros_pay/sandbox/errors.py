"""Solana's error vocabulary, as the sandbox reports it.

Clients (ours, solana-py, x402 SDKs) classify failures by the JSON-RPC code and by substrings
of the message ("custom program error: 0x1", "Blockhash not found", "already been processed"),
so the texts here follow the validator's wording rather than inventing our own.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_status import (
    InstructionErrorBorshIO,
    InstructionErrorCustom,
    InstructionErrorFieldless,
    TransactionErrorDuplicateInstruction,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
)

# JSON-RPC codes the validator uses (agave rpc/custom_error.rs and jsonrpc-core).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
UNSUPPORTED_TRANSACTION_VERSION = -32015


class RpcError(Exception):
    """A JSON-RPC error object: the transport renders it as `{"code", "message", "data"?}`."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


def invalid_params(detail: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {detail}")


def invalid_param(detail: str) -> RpcError:
    """The validator's singular form, used when one value (a key, a signature) is bad."""
    return RpcError(INVALID_PARAMS, f"Invalid param: {detail}")


_INSTRUCTION_TEXT = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "UnbalancedInstruction": "sum of account balances before and after instruction do not match",
    "ModifiedProgramId": "instruction illegally modified the program id of an account",
    "ExternalAccountLamportSpend": "instruction spent from the balance of an account it does "
    "not own",
    "ExternalAccountDataModified": "instruction modified data of an account it does not own",
    "ReadonlyLamportChange": "instruction changed the balance of a read-only account",
    "ReadonlyDataModified": "instruction modified data of a read-only account",
    "DuplicateAccountIndex": "instruction contains duplicate accounts",
    "ExecutableModified": "instruction changed executable bit of an account",
    "NotEnoughAccountKeys": "insufficient account keys for instruction",
    "AccountNotExecutable": "instruction expected an executable account",
    "MissingAccount": "An account required by the instruction is missing",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
    "PrivilegeEscalation": "Cross-program invocation with unauthorized signer or writable "
    "account",
    "ProgramFailedToComplete": "Program failed to complete",
    "IncorrectAuthority": "Incorrect authority provided",
    "AccountNotRentExempt": "An account does not have enough lamports to be rent-exempt",
    "InvalidAccountOwner": "Invalid account owner",
    "ArithmeticOverflow": "Program arithmetic overflowed",
    "IllegalOwner": "Provided owner is not allowed",
}

_TRANSACTION_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidProgramForExecution": "This program may not be used for executing instructions",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "UnsupportedVersion": "Transaction version is unsupported",
    "AddressLookupTableNotFound": "Transaction loads an address table account that doesn't "
    "exist",
    "InvalidRentPayingAccount": "Transaction leaves an account with a lower balance than "
    "rent-exempt minimum",
}


def _words(name: str) -> str:
    """Fallback text for a variant we have no wording for: `FooBar` -> `foo bar`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _variant(value: object) -> str:
    return str(value).rsplit(".", 1)[-1]


def instruction_error_text(err: object) -> str:
    if isinstance(err, InstructionErrorCustom):
        return f"custom program error: {err.code:#x}"
    if isinstance(err, InstructionErrorBorshIO):
        return f"Failed to serialize or deserialize account data: {err.value}"
    if isinstance(err, InstructionErrorFieldless):
        name = _variant(err)
        return _INSTRUCTION_TEXT.get(name, _words(name))
    return str(err)


def transaction_error_text(err: TransactionErrorType) -> str:
    """The validator's Display text for a TransactionError (what follows "simulation failed: ")."""
    if isinstance(err, TransactionErrorInstructionError):
        return f"Error processing Instruction {err.index}: {instruction_error_text(err.err)}"
    if isinstance(err, TransactionErrorInsufficientFundsForRent):
        return (f"Transaction results in an account ({err.account_index}) with insufficient "
                "funds for rent")
    if isinstance(err, TransactionErrorDuplicateInstruction):
        return f"Transaction contains a duplicate instruction ({err.index}) that is not allowed"
    if isinstance(err, TransactionErrorFieldless):
        name = _variant(err)
        return _TRANSACTION_TEXT.get(name, _words(name))
    return str(err)


def transaction_error_json(err: TransactionErrorType | None) -> Any:
    """The wire form of an error (`"BlockhashNotFound"`, `{"InstructionError": [2, {...}]}`).

    solders already knows the exact serde shapes, so we borrow its serializer instead of
    re-deriving them.
    """
    if err is None:
        return None
    return orjson.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


def is_fieldless(err: TransactionErrorType | None, name: str) -> bool:
    return isinstance(err, TransactionErrorFieldless) and _variant(err) == name


BLOCKHASH_NOT_FOUND = TransactionErrorFieldless.BlockhashNotFound
ALREADY_PROCESSED = TransactionErrorFieldless.AlreadyProcessed
