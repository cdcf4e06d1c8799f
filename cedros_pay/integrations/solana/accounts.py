"""Solana addresses the gateway derives: associated token accounts (spec 22)."""

from __future__ import annotations

from functools import lru_cache

from solders.pubkey import Pubkey

from cedros_pay.x402.svm import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")

# Stablecoins issued under Token-2022; every other supported mint uses the classic program.
_TOKEN_2022_MINTS = frozenset({"2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"})  # PYUSD


def token_program_for(mint: str) -> Pubkey:
    return TOKEN_2022_PROGRAM_ID if mint in _TOKEN_2022_MINTS else TOKEN_PROGRAM_ID


@lru_cache(maxsize=4096)
def associated_token_address(owner: str, mint: str, token_program: str | None = None) -> str:
    """The ATA of `owner` for `mint`; pure and cached (quotes derive it on every call).

    Raises ValueError for an address that is not base58 of 32 bytes.
    """
    program = Pubkey.from_string(token_program) if token_program else token_program_for(mint)
    address, _bump = Pubkey.find_program_address(
        [bytes(Pubkey.from_string(owner)), bytes(program), bytes(Pubkey.from_string(mint))],
        ASSOCIATED_TOKEN_PROGRAM_ID,
    )
    return str(address)
