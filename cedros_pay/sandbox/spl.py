"""SPL Token byte layouts and instructions, enough for a payment sandbox.

Built on solders only, so the sandbox does not pull solana-py into the server's runtime.
Token-2022 shares the base layouts (82-byte mint, 165-byte account) and appends an account-type
byte plus extensions, which is why readers here look at prefixes and the type byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.token.associated import get_associated_token_address

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)

MINT_LEN = 82
ACCOUNT_LEN = 165
_ACCOUNT_TYPE_MINT = 1
_ACCOUNT_TYPE_ACCOUNT = 2
_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}

_TRANSFER_CHECKED = 12
_MINT_TO_CHECKED = 14
_ATA_CREATE_IDEMPOTENT = 1


@dataclass(frozen=True)
class MintInfo:
    address: Pubkey
    program: Pubkey
    decimals: int
    supply: int
    mint_authority: Pubkey | None
    freeze_authority: Pubkey | None


@dataclass(frozen=True)
class TokenAccountInfo:
    address: Pubkey
    program: Pubkey
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: str
    is_native: int | None
    delegated_amount: int
    close_authority: Pubkey | None
    extensions: tuple[str, ...]


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")


def _coption_key(data: bytes, at: int) -> Pubkey | None:
    """A COption<Pubkey>: 4-byte tag then 32 bytes."""
    return Pubkey.from_bytes(data[at + 4 : at + 36]) if data[at] else None


def pack_mint(
    decimals: int, supply: int = 0, mint_authority: Pubkey | None = None,
    freeze_authority: Pubkey | None = None,
) -> bytes:
    """An initialized 82-byte Mint, valid under both token programs."""
    def coption(key: Pubkey | None) -> bytes:
        return (b"\x01\x00\x00\x00" + bytes(key)) if key else bytes(36)

    return (coption(mint_authority) + supply.to_bytes(8, "little") + bytes([decimals, 1])
            + coption(freeze_authority))


def read_mint(address: Pubkey, account: Account | None) -> MintInfo | None:
    if account is None or account.owner not in TOKEN_PROGRAMS or len(account.data) < MINT_LEN:
        return None
    data = bytes(account.data)
    extended = len(data) > MINT_LEN
    if extended and (len(data) <= ACCOUNT_LEN or data[ACCOUNT_LEN] != _ACCOUNT_TYPE_MINT):
        return None  # a token account (165 bytes) or something else
    if not data[45]:
        return None
    return MintInfo(address, account.owner, data[44], _u64(data, 36), _coption_key(data, 0),
                    _coption_key(data, 46))


def read_token_account(address: Pubkey, account: Account | None) -> TokenAccountInfo | None:
    if account is None or account.owner not in TOKEN_PROGRAMS or len(account.data) < ACCOUNT_LEN:
        return None
    data = bytes(account.data)
    if len(data) > ACCOUNT_LEN and data[ACCOUNT_LEN] != _ACCOUNT_TYPE_ACCOUNT:
        return None
    state = _STATES.get(data[108], "uninitialized")
    if state == "uninitialized":
        return None
    native = _u64(data, 113) if data[109] else None
    return TokenAccountInfo(
        address=address, program=account.owner, mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]), amount=_u64(data, 64),
        delegate=_coption_key(data, 72), state=state, is_native=native,
        delegated_amount=_u64(data, 121), close_authority=_coption_key(data, 129),
        extensions=_extension_names(data[ACCOUNT_LEN + 1 :]),
    )


_EXTENSION_NAMES = {7: "immutableOwner", 8: "memoTransfer", 6: "defaultAccountState",
                    2: "transferFeeAmount", 9: "nonTransferableAccount"}


def _extension_names(tlv: bytes) -> tuple[str, ...]:
    """Names of Token-2022 TLV extensions (2-byte type, 2-byte length, value)."""
    names: list[str] = []
    at = 0
    while at + 4 <= len(tlv):
        kind = int.from_bytes(tlv[at : at + 2], "little")
        size = int.from_bytes(tlv[at + 2 : at + 4], "little")
        if kind == 0:
            break
        names.append(_EXTENSION_NAMES.get(kind, f"unknown{kind}"))
        at += 4 + size
    return tuple(names)


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    """The `uiTokenAmount` object: exact string plus the (lossy) float clients display."""
    value = Decimal(amount).scaleb(-decimals)
    text = format(value.normalize(), "f") if amount else "0"
    return {"amount": str(amount), "decimals": decimals, "uiAmount": float(value),
            "uiAmountString": text}


def associated_token_address(owner: Pubkey, mint: Pubkey, program: Pubkey = TOKEN_PROGRAM_ID
                             ) -> Pubkey:
    return get_associated_token_address(owner, mint, program)


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: Pubkey,
                          program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    ata = associated_token_address(owner, mint, program)
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([_ATA_CREATE_IDEMPOTENT]), [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(ata, is_signer=False, is_writable=True),
        AccountMeta(owner, is_signer=False, is_writable=False),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(program, is_signer=False, is_writable=False),
    ])


def transfer_checked(source: Pubkey, mint: Pubkey, destination: Pubkey, authority: Pubkey,
                     amount: int, decimals: int, program: Pubkey = TOKEN_PROGRAM_ID
                     ) -> Instruction:
    data = bytes([_TRANSFER_CHECKED]) + amount.to_bytes(8, "little") + bytes([decimals])
    return Instruction(program, data, [
        AccountMeta(source, is_signer=False, is_writable=True),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(destination, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=True, is_writable=False),
    ])


def mint_to_checked(mint: Pubkey, destination: Pubkey, authority: Pubkey, amount: int,
                    decimals: int, program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    data = bytes([_MINT_TO_CHECKED]) + amount.to_bytes(8, "little") + bytes([decimals])
    return Instruction(program, data, [
        AccountMeta(mint, is_signer=False, is_writable=True),
        AccountMeta(destination, is_signer=False, is_writable=True),
        AccountMeta(authority, is_signer=True, is_writable=False),
    ])


def memo(text: str, signers: tuple[Pubkey, ...] = ()) -> Instruction:
    return Instruction(MEMO_PROGRAM_ID, text.encode(), [
        AccountMeta(s, is_signer=True, is_writable=False) for s in signers
    ])
