"""Wire shapes of accounts, transactions and their meta, as the validator renders them.

solana-py parses every response into strict solders types, so field names, nesting and value
types (amounts as strings, `rentEpoch` as u64, `version` as "legacy" or 0) must match exactly.
"""

from __future__ import annotations

import base64
from typing import Any

import base58
from solders.account import Account
from solders.instruction import CompiledInstruction
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.errors import invalid_param, invalid_params, transaction_error_json
from cedros_pay.sandbox.ledger import Execution, LandedTransaction, TokenBalance
from cedros_pay.sandbox.parsed import (
    address_table_lookups_json,
    parsed_inner_instructions,
    parsed_transaction_json,
)

_BASE58_LIMIT = 128  # the validator refuses base58 for larger account data


def account_json(account: Account, address: Pubkey, encoding: str,
                 data_slice: tuple[int, int] | None = None,
                 lookup: Any = None) -> dict[str, Any]:
    """An account object; `lookup(pubkey) -> Account | None` resolves mints for jsonParsed."""
    data = bytes(account.data)
    body: dict[str, Any] = {
        "data": None,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(data),
    }
    if encoding == "jsonParsed":
        parsed = parsed_token_data(address, account, lookup)
        if parsed is not None:
            body["data"] = parsed
            return body
        encoding = "base64"
    if data_slice is not None:
        offset, length = data_slice
        data = data[offset : offset + length]
    body["data"] = binary(data, encoding)
    return body


def binary(data: bytes, encoding: str) -> list[str]:
    if encoding == "base64":
        return [base64.b64encode(data).decode(), "base64"]
    if encoding == "base58":
        if len(data) > _BASE58_LIMIT:
            raise invalid_params("Encoded binary (base 58) data should be less than 128 bytes, "
                                 "please use Base64 encoding.")
        return [base58.b58encode(data).decode(), "base58"]
    raise invalid_params(f"unsupported encoding: {encoding}. Supported encodings: base58, "
                         "base64, jsonParsed")


def parsed_token_data(address: Pubkey, account: Account, lookup: Any) -> dict[str, Any] | None:
    """`jsonParsed` for SPL mints and token accounts; None for anything else."""
    program = "spl-token" if account.owner == spl.TOKEN_PROGRAM_ID else "spl-token-2022"
    mint = spl.read_mint(address, account)
    if mint is not None:
        info: dict[str, Any] = {
            "decimals": mint.decimals,
            "freezeAuthority": _key(mint.freeze_authority),
            "isInitialized": True,
            "mintAuthority": _key(mint.mint_authority),
            "supply": str(mint.supply),
        }
        return {"parsed": {"info": info, "type": "mint"}, "program": program,
                "space": len(account.data)}
    token = spl.read_token_account(address, account)
    if token is None or lookup is None:
        return None
    mint = spl.read_mint(token.mint, lookup(token.mint))
    if mint is None:
        return None
    info = {
        "isNative": token.is_native is not None,
        "mint": str(token.mint),
        "owner": str(token.owner),
        "state": token.state,
        "tokenAmount": spl.ui_token_amount(token.amount, mint.decimals),
    }
    if token.delegate is not None:
        info["delegate"] = str(token.delegate)
        info["delegatedAmount"] = spl.ui_token_amount(token.delegated_amount, mint.decimals)
    if token.close_authority is not None:
        info["closeAuthority"] = str(token.close_authority)
    if token.extensions:
        info["extensions"] = [{"extension": name} for name in token.extensions]
    return {"parsed": {"info": info, "type": "account"}, "program": program,
            "space": len(account.data)}


def _key(key: Pubkey | None) -> str | None:
    return None if key is None else str(key)


# --- transactions -----------------------------------------------------------------------


def transaction_json(tx: VersionedTransaction, encoding: str) -> Any:
    if encoding in ("base64", "base58"):
        return binary_transaction(bytes(tx), encoding)
    if encoding != "json":
        raise invalid_params(f"unsupported encoding: {encoding}")
    message = tx.message
    if not isinstance(message, Message | MessageV0):
        raise invalid_params("unsupported transaction version")
    return {"signatures": [str(s) for s in tx.signatures], "message": message_json(message)}


def binary_transaction(raw: bytes, encoding: str) -> list[str]:
    if encoding == "base64":
        return [base64.b64encode(raw).decode(), encoding]
    return [base58.b58encode(raw).decode(), encoding]


def message_json(message: Message | MessageV0) -> dict[str, Any]:
    header = message.header
    body: dict[str, Any] = {
        "accountKeys": [str(k) for k in message.account_keys],
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [compiled_instruction_json(ix, None) for ix in message.instructions],
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = address_table_lookups_json(message)
    return body


def compiled_instruction_json(ix: CompiledInstruction, stack_height: int | None
                              ) -> dict[str, Any]:
    return {"programIdIndex": ix.program_id_index, "accounts": list(bytes(ix.accounts)),
            "data": base58.b58encode(bytes(ix.data)).decode(), "stackHeight": stack_height}


def token_balance_json(balance: TokenBalance) -> dict[str, Any]:
    return {"accountIndex": balance.account_index, "mint": str(balance.mint),
            "owner": str(balance.owner), "programId": str(balance.program),
            "uiTokenAmount": spl.ui_token_amount(balance.amount, balance.decimals)}


def inner_instructions_json(execution: Execution) -> list[dict[str, Any]]:
    return [
        {"index": index,
         "instructions": [compiled_instruction_json(inner.instruction(), inner.stack_height())
                          for inner in group]}
        for index, group in enumerate(execution.inner_instructions) if group
    ]


def return_data_json(execution: Execution) -> dict[str, Any] | None:
    if execution.return_data is None:
        return None
    program, data = execution.return_data
    return {"programId": str(program), "data": [base64.b64encode(data).decode(), "base64"]}


def meta_json(record: LandedTransaction, parsed: bool = False) -> dict[str, Any]:
    """Transaction meta; `parsed` gives the jsonParsed flavour (inner instructions decoded,
    no loadedAddresses since the account keys already say where each came from)."""
    execution = record.execution
    err = transaction_error_json(execution.err)
    meta: dict[str, Any] = {
        "err": err,
        "status": {"Ok": None} if err is None else {"Err": err},
        "fee": execution.fee,
        "preBalances": record.pre.lamports,
        "postBalances": record.post.lamports,
        "innerInstructions": (
            parsed_inner_instructions(execution.inner_instructions, record.keys) if parsed
            else inner_instructions_json(execution)),
        "logMessages": execution.logs,
        "preTokenBalances": [token_balance_json(b) for b in record.pre.tokens],
        "postTokenBalances": [token_balance_json(b) for b in record.post.tokens],
        "rewards": [],
        "loadedAddresses": {"writable": [str(k) for k in record.keys.writable],
                            "readonly": [str(k) for k in record.keys.readonly]},
        "computeUnitsConsumed": execution.units_consumed,
    }
    if parsed:
        del meta["loadedAddresses"]
    returned = return_data_json(execution)
    if returned is not None:
        meta["returnData"] = returned
    return meta


def confirmed_transaction_json(record: LandedTransaction, encoding: str,
                               with_version: bool) -> dict[str, Any]:
    parsed = encoding == "jsonParsed"
    body: dict[str, Any] = {
        "slot": record.slot,
        "transaction": (parsed_transaction_json(record.transaction, record.keys) if parsed
                        else transaction_json(record.transaction, encoding)),
        "meta": meta_json(record, parsed),
        "blockTime": record.block.unix_time,
    }
    if with_version:
        body["version"] = 0 if isinstance(record.transaction.message, MessageV0) else "legacy"
    return body


def decode_transaction(text: str, encoding: str) -> VersionedTransaction:
    """sendTransaction/simulateTransaction input, with the validator's -32602 wording."""
    if encoding == "base58":
        try:
            raw = base58.b58decode(text)
        except ValueError as exc:
            raise invalid_params(f"invalid base58 encoding: {exc}") from None
    elif encoding == "base64":
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise invalid_params(f"invalid base64 encoding: {exc}") from None
    else:
        raise invalid_params(f"unsupported encoding: {encoding}. Supported encodings: base58, "
                             "base64")
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise invalid_params("failed to deserialize solana_transaction::versioned::"
                             f"VersionedTransaction: {exc}") from None


def parse_pubkey(value: Any) -> Pubkey:
    if not isinstance(value, str):
        raise invalid_param("Invalid")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise invalid_param("WrongSize" if _decodes(value) else "Invalid") from None


def _decodes(text: str) -> bool:
    try:
        base58.b58decode(text)
    except ValueError:
        return False
    return True
