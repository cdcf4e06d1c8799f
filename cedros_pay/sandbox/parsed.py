"""`jsonParsed` transactions: the instructions a payment uses, decoded as the validator does.

Covered: SPL Token / Token-2022 transfer and transferChecked, Memo, system transfer and the
associated-token-account creates. Anything else comes back "partially decoded" (program id,
account addresses, base58 data), which is also what a validator does for programs it cannot
parse (ComputeBudget included).
"""

from __future__ import annotations

from typing import Any

import base58
from solders.instruction import CompiledInstruction
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import InnerInstruction

from cedros_pay.sandbox import spl
from cedros_pay.sandbox.ledger import AccountKeys


def address_table_lookups_json(message: MessageV0) -> list[dict[str, Any]]:
    """A v0 message's address table lookups, as both transaction encodings render them."""
    return [{"accountKey": str(lookup.account_key),
             "writableIndexes": list(bytes(lookup.writable_indexes)),
             "readonlyIndexes": list(bytes(lookup.readonly_indexes))}
            for lookup in message.address_table_lookups]

def parsed_transaction_json(tx: VersionedTransaction, keys: AccountKeys) -> dict[str, Any]:
    message = tx.message
    assert isinstance(message, Message | MessageV0)
    body: dict[str, Any] = {
        "accountKeys": _account_keys(message, keys),
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [parsed_instruction(ix, keys, None) for ix in message.instructions],
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = address_table_lookups_json(message)
    return {"signatures": [str(s) for s in tx.signatures], "message": body}


def parsed_inner_instructions(groups: list[list[InnerInstruction]], keys: AccountKeys
                              ) -> list[dict[str, Any]]:
    return [
        {"index": index,
         "instructions": [parsed_instruction(inner.instruction(), keys, inner.stack_height())
                          for inner in group]}
        for index, group in enumerate(groups) if group
    ]


def _account_keys(message: Message | MessageV0, keys: AccountKeys) -> list[dict[str, Any]]:
    header = message.header
    signers = header.num_required_signatures
    static = len(keys.static)
    out = []
    for index, key in enumerate(keys.static):
        if index < signers:
            writable = index < signers - header.num_readonly_signed_accounts
        else:
            writable = index < static - header.num_readonly_unsigned_accounts
        out.append({"pubkey": str(key), "writable": writable, "signer": index < signers,
                    "source": "transaction"})
    out += [{"pubkey": str(k), "writable": True, "signer": False, "source": "lookupTable"}
            for k in keys.writable]
    out += [{"pubkey": str(k), "writable": False, "signer": False, "source": "lookupTable"}
            for k in keys.readonly]
    return out


def parsed_instruction(ix: CompiledInstruction, keys: AccountKeys, stack_height: int | None
                       ) -> dict[str, Any]:
    all_keys = keys.all
    program = all_keys[ix.program_id_index]
    accounts = [all_keys[i] for i in bytes(ix.accounts)]
    data = bytes(ix.data)
    parsed = _parse(program, accounts, data)
    if parsed is None:
        return {"programId": str(program), "accounts": [str(a) for a in accounts],
                "data": base58.b58encode(data).decode(), "stackHeight": stack_height}
    name, value = parsed
    return {"program": name, "programId": str(program), "parsed": value,
            "stackHeight": stack_height}


def _parse(program: Pubkey, accounts: list[Pubkey], data: bytes) -> tuple[str, Any] | None:
    try:
        if program == spl.MEMO_PROGRAM_ID:
            return "spl-memo", data.decode()
        if program in spl.TOKEN_PROGRAMS:
            name = "spl-token" if program == spl.TOKEN_PROGRAM_ID else "spl-token-2022"
            token = _token(accounts, data)
            return None if token is None else (name, token)
        if program == SYSTEM_PROGRAM_ID and data[:4] == (2).to_bytes(4, "little"):
            return "system", {"info": {"source": str(accounts[0]),
                                       "destination": str(accounts[1]),
                                       "lamports": int.from_bytes(data[4:12], "little")},
                              "type": "transfer"}
        if program == spl.ASSOCIATED_TOKEN_PROGRAM_ID and data in (b"", b"\x00", b"\x01"):
            names = ("source", "account", "wallet", "mint", "systemProgram", "tokenProgram")
            kind = "createIdempotent" if data == b"\x01" else "create"
            return "spl-associated-token-account", {
                "info": {n: str(a) for n, a in zip(names, accounts, strict=False)}, "type": kind}
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def _token(accounts: list[Pubkey], data: bytes) -> dict[str, Any] | None:
    if data[:1] == b"\x03" and len(data) >= 9:
        return {"info": {"source": str(accounts[0]), "destination": str(accounts[1]),
                         "authority": str(accounts[2]),
                         "amount": str(int.from_bytes(data[1:9], "little"))},
                "type": "transfer"}
    if data[:1] == b"\x0c" and len(data) >= 10:
        return {"info": {"source": str(accounts[0]), "mint": str(accounts[1]),
                         "destination": str(accounts[2]), "authority": str(accounts[3]),
                         "tokenAmount": spl.ui_token_amount(int.from_bytes(data[1:9], "little"),
                                                            data[9])},
                "type": "transferChecked"}
    return None
