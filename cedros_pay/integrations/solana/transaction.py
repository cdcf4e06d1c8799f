"""Decode an x402 payment transaction and read what it does (spec 07 "Solana Transaction
Format", "Transfer Instruction Extraction"). Pure: no I/O, no clock.

`decode_transaction` turns the payload's base64 into a solders `VersionedTransaction`
(legacy and v0 alike); `inspect` scans ALL instructions and returns `TransferFacts`, the
facts a `Requirement` is checked against.

Decisions:
- Exactly one SPL `TransferChecked` (Token or Token-2022) per payment. A second one, to the
  merchant or anywhere else, is refused (`invalid_transaction`, reason
  `multiple_transfers`): the server submits the transaction and vouches for the payment it
  records, so it must be unambiguous which transfer paid; no x402 client builds two.
- A plain `Transfer` (no mint, no decimals) is `not_spl_transfer`: without the mint in the
  instruction the token cannot be checked offline.
- v0 transactions whose transfer accounts come from an address lookup table are refused
  (`invalid_transaction`, reason `lookup_table_accounts`): resolving them needs an RPC
  read, and a payment has no need for lookup tables (it touches at most ~8 accounts).
- The transfer authority must sign directly; a multisig authority (extra signer accounts)
  is reported as `authority_signed=False`.
- `TransferChecked` data longer than 10 bytes is accepted (the token programs ignore the
  tail); shorter data or fewer than 4 accounts is `invalid_transaction`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import SanitizeError, VersionedTransaction

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.svm import (
    COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_PROGRAMS,
    SET_COMPUTE_UNIT_LIMIT,
    SET_COMPUTE_UNIT_PRICE,
    TOKEN_PROGRAMS,
    TRANSFER,
    TRANSFER_CHECKED,
)

MAX_TRANSACTION_BYTES = 1232  # Solana's packet data size: nothing larger can be sent
_DEFAULT_SIGNATURE = Signature.default()


@dataclass(frozen=True, slots=True)
class TransferFacts:
    """What one payment transaction does, read offline. Addresses are base58 text."""

    signature: str  # the first signature: the transaction's id
    fee_payer: str  # account 0
    version: Literal["legacy", 0]
    blockhash: str
    instruction_index: int  # of the TransferChecked, for mapping on-chain errors
    token_program: str
    source: str
    mint: str
    destination: str
    authority: str
    amount: int  # atomic units (u64)
    decimals: int
    memos: tuple[str, ...]  # every Memo (v1 and v2) instruction's text, in order
    signers: tuple[str, ...]  # accounts that must sign, fee payer first
    missing_signers: tuple[str, ...]  # signature slot still empty (all zeros)
    invalid_signers: tuple[str, ...]  # a signature is there but does not verify
    authority_signed: bool  # the authority is a signer and its signature verifies
    compute_unit_limit: int | None = None
    compute_unit_price: int | None = None  # micro-lamports per compute unit
    other_programs: tuple[str, ...] = ()  # programs beyond budget / token / memo / ATA

    @property
    def fully_signed(self) -> bool:
        return not self.missing_signers and not self.invalid_signers


def decode_transaction(data: str | bytes) -> VersionedTransaction:
    """base64 text (or raw bytes) -> a sane legacy or v0 transaction; else
    `invalid_transaction` with a reason."""
    raw = _b64decode(data) if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_TRANSACTION_BYTES:
        _invalid(Reason.TRANSACTION_TOO_LARGE,
                 f"the transaction is {len(raw)} bytes; Solana's limit is "
                 f"{MAX_TRANSACTION_BYTES}", {"limit": MAX_TRANSACTION_BYTES})
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except (ValueError, TypeError):
        _invalid(Reason.TRANSACTION_UNDECODABLE,
                 "the transaction bytes are not a legacy or v0 Solana transaction")
    if bytes(tx) != raw:  # solders ignores trailing bytes; a validator would not
        _invalid(Reason.TRANSACTION_TRAILING_BYTES,
                 "the transaction has bytes after its end")
    if not isinstance(tx.message, Message | MessageV0):
        _invalid(Reason.TRANSACTION_UNDECODABLE, "unsupported transaction version")
    try:
        tx.sanitize()
    except SanitizeError:
        _invalid(Reason.TRANSACTION_UNSANITARY,
                 "the transaction's account indexes or signature count are inconsistent")
    if not tx.signatures:
        _invalid(Reason.TRANSACTION_UNSANITARY, "the transaction has no signatures")
    return tx


def inspect(tx: VersionedTransaction) -> TransferFacts:
    """Find the one TransferChecked among all instructions and gather the facts around it.

    Raises `not_spl_transfer` when there is none, `invalid_transaction` when there are
    several, when it is malformed, or when its accounts sit in a lookup table.
    """
    message = tx.message
    keys: Sequence[Pubkey] = message.account_keys
    header = message.header
    version: Literal["legacy", 0] = 0 if isinstance(message, MessageV0) else "legacy"

    transfers: list[tuple[int, Any]] = []
    unchecked = 0
    memos: list[str] = []
    cu_limit: int | None = None
    cu_price: int | None = None
    others: list[str] = []
    for index, ix in enumerate(message.instructions):
        program = keys[ix.program_id_index]  # program ids are always static keys
        data = bytes(ix.data)
        if program in TOKEN_PROGRAMS:
            if data[:1] == bytes([TRANSFER_CHECKED]):
                transfers.append((index, ix))
            elif data[:1] == bytes([TRANSFER]):
                unchecked += 1
        elif program in MEMO_PROGRAMS:
            memos.append(data.decode("utf-8", errors="replace"))
        elif program == COMPUTE_BUDGET_PROGRAM_ID:
            if data[:1] == bytes([SET_COMPUTE_UNIT_LIMIT]) and len(data) >= 5:
                cu_limit = int.from_bytes(data[1:5], "little")
            elif data[:1] == bytes([SET_COMPUTE_UNIT_PRICE]) and len(data) >= 9:
                cu_price = int.from_bytes(data[1:9], "little")
        elif str(program) not in _BENIGN_PROGRAMS:
            others.append(str(program))

    if not transfers:
        if unchecked:
            raise CedrosError(ErrorCode.NOT_SPL_TRANSFER,
                              "the payment uses Transfer; only TransferChecked is accepted",
                              {"reason": Reason.UNCHECKED_TRANSFER.value})
        raise CedrosError(ErrorCode.NOT_SPL_TRANSFER,
                          "the transaction has no SPL TransferChecked instruction",
                          {"reason": Reason.NO_TRANSFER.value})
    if len(transfers) > 1:
        _invalid(Reason.MULTIPLE_TRANSFERS,
                 f"the transaction has {len(transfers)} token transfers; a payment is exactly "
                 "one TransferChecked", {"count": len(transfers)})

    index, ix = transfers[0]
    data = bytes(ix.data)
    accounts = bytes(ix.accounts)
    if len(data) < 10 or len(accounts) < 4:
        _invalid(Reason.MALFORMED_TRANSFER, "the TransferChecked instruction is malformed")
    if any(a >= len(keys) for a in accounts[:4]):
        _invalid(Reason.LOOKUP_TABLE_ACCOUNTS,
                 "the transfer's accounts come from an address lookup table, which cannot be "
                 "checked offline; send them as static account keys")
    source, mint, destination, authority = (keys[a] for a in accounts[:4])

    n_signers = header.num_required_signatures
    signers = tuple(keys[:n_signers])
    results = tx.verify_with_results()
    missing = tuple(str(k) for k, s in zip(signers, tx.signatures, strict=False)
                    if s == _DEFAULT_SIGNATURE)
    invalid = tuple(str(k) for k, s, ok in zip(signers, tx.signatures, results, strict=False)
                    if not ok and s != _DEFAULT_SIGNATURE)
    authority_slot = accounts[3]
    authority_signed = authority_slot < n_signers and bool(results[authority_slot])

    return TransferFacts(
        signature=str(tx.signatures[0]),
        fee_payer=str(keys[0]),
        version=version,
        blockhash=str(message.recent_blockhash),
        instruction_index=index,
        token_program=str(keys[ix.program_id_index]),
        source=str(source),
        mint=str(mint),
        destination=str(destination),
        authority=str(authority),
        amount=int.from_bytes(data[1:9], "little"),
        decimals=data[9],
        memos=tuple(memos),
        signers=tuple(str(k) for k in signers),
        missing_signers=missing,
        invalid_signers=invalid,
        authority_signed=authority_signed,
        compute_unit_limit=cu_limit,
        compute_unit_price=cu_price,
        other_programs=tuple(others),
    )


# Programs a payment may touch without comment: creating the recipient's ATA, system.
_BENIGN_PROGRAMS = frozenset({
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
    "11111111111111111111111111111111",
})


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        _invalid(Reason.TRANSACTION_NOT_BASE64, "payload.transaction is not base64")


def _invalid(reason: Reason, message: str,
             details: Mapping[str, Any] | None = None) -> NoReturn:
    raise CedrosError(ErrorCode.INVALID_TRANSACTION, message,
                      {"reason": reason.value, **(details or {})})
