"""How each protocol version names a Solana network: Cedros names (v0, and the config),
v1's legacy names, v2's CAIP-2 ids. Localnet wears devnet's identity (the sandbox does)."""

from __future__ import annotations

from cedros_pay.core.errors import CedrosError, ErrorCode

CAIP2 = {
    "mainnet-beta": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "devnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    "testnet": "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
    "localnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
}
V1_NETWORKS = {"mainnet-beta": "solana", "devnet": "solana-devnet",
               "testnet": "solana-testnet", "localnet": "solana-devnet"}


def caip2(network: str) -> str:
    """The CAIP-2 id of a Cedros network name (`devnet` -> `solana:EtWT...`)."""
    try:
        return CAIP2[network]
    except KeyError:
        raise CedrosError(ErrorCode.CONFIG_ERROR, f"no CAIP-2 id for network {network!r}") \
            from None


def v1_network(network: str) -> str:
    return V1_NETWORKS.get(network, network)


def wire_network(network: str, version: int) -> str:
    """How protocol `version` names a Cedros network: CAIP-2 for v2, v1's names else."""
    return caip2(network) if version == 2 else v1_network(network)
