"""Associated token accounts: the address quotes advertise as `payTo`."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from cedros_pay.integrations.solana.accounts import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
)
from cedros_pay.sandbox import spl

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"  # mainnet USDC mint


@pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID])
def test_ata_matches_the_one_the_chain_creates(program: object) -> None:
    # The sandbox derives ATAs the way LiteSVM's real ATA program does (its e2e tests
    # create accounts at these addresses), so agreeing with it means agreeing with Solana.
    for _ in range(5):
        owner = Keypair().pubkey()
        mint = Keypair().pubkey()
        ours = associated_token_address(str(owner), str(mint), str(program))
        assert ours == str(spl.associated_token_address(owner, mint, program))  # type: ignore[arg-type]


def test_bad_owner_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        associated_token_address("not-base58!", USDC)
