"""The stablecoin mints a configuration may name (spec 17), and Solana address checks.

Only $1-pegged stablecoins are allowed: prices are rounded to cents, so a typo'd or
volatile mint would misprice every payment. Devnet USDC is accepted on the development
networks only (DESIGN §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import base58

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


STABLECOINS: tuple[Stablecoin, ...] = (
    Stablecoin("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6),
    Stablecoin("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6),
    Stablecoin("PYUSD", "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo", 6),
    Stablecoin("CASH", "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH", 6),
)
DEVNET_USDC_MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
_DEVNET_USDC = Stablecoin("USDC", DEVNET_USDC_MINT, 6)

NETWORKS: tuple[str, ...] = ("mainnet-beta", "devnet", "testnet", "localnet")
# localnet (the sandbox chain) is a development network too.
DEV_NETWORKS: frozenset[str] = frozenset({"devnet", "testnet", "localnet"})


def supported_mints(network: str) -> tuple[Stablecoin, ...]:
    """The mints a server on `network` may be configured with."""
    if network in DEV_NETWORKS:
        return (*STABLECOINS, _DEVNET_USDC)
    return STABLECOINS


def stablecoin_for_mint(mint: str, network: str) -> Stablecoin | None:
    """The stablecoin behind `mint` on `network`, or None when it is not accepted there."""
    for coin in supported_mints(network):
        if coin.mint == mint:
            return coin
    return None


def is_solana_address(value: str) -> bool:
    """True for base58 text that decodes to 32 bytes (what solana-go's parser accepts)."""
    if not 32 <= len(value) <= 44:
        return False
    try:
        return len(base58.b58decode(value)) == 32
    except ValueError:
        return False
