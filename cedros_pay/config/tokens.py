"""The stablecoin mints a configuration may name (spec 17), and Solana address checks.

Only $1-pegged stablecoins are allowed: prices are rounded to cents, so a typo'd or
volatile mint would misprice every payment. Devnet USDC is accepted on the development
networks only (DESIGN §7).
"""

from __future__ import annotations

from dataclasses import dataclass

from cedros_pay.core.assets import DEVNET_NETWORKS, PAYMENT_STABLECOINS, USDC_DEVNET_MINT
from cedros_pay.core.ids import is_solana_address

__all__ = [
    "DEVNET_USDC_MINT",
    "DEV_NETWORKS",
    "NETWORKS",
    "STABLECOINS",
    "Stablecoin",
    "is_solana_address",
    "stablecoin_for_mint",
    "supported_mints",
]


@dataclass(frozen=True, slots=True)
class Stablecoin:
    symbol: str
    mint: str
    decimals: int


# The data live in core.assets (one registry for pricing and configuration alike).
STABLECOINS: tuple[Stablecoin, ...] = tuple(
    Stablecoin(a.code, a.solana_mint(), a.decimals) for a in PAYMENT_STABLECOINS)
DEVNET_USDC_MINT = USDC_DEVNET_MINT

NETWORKS: tuple[str, ...] = ("mainnet-beta", "devnet", "testnet", "localnet")
DEV_NETWORKS: frozenset[str] = DEVNET_NETWORKS


def supported_mints(network: str) -> tuple[Stablecoin, ...]:
    """The mints a server on `network` may be configured with."""
    return tuple(Stablecoin(a.code, mint, a.decimals)
                 for a in PAYMENT_STABLECOINS for mint in a.mints(network))


def stablecoin_for_mint(mint: str, network: str) -> Stablecoin | None:
    """The stablecoin behind `mint` on `network`, or None when it is not accepted there."""
    for coin in supported_mints(network):
        if coin.mint == mint:
            return coin
    return None
