"""Currencies and tokens (spec 05 "Asset", "Pre-Registered Assets"; spec 17 token mints).

An `AssetRegistry` is immutable: adding an asset returns a new registry, so there is no
process-wide mutable table. `DEFAULT_REGISTRY` holds the pre-registered assets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from cedros_pay.core.errors import CedrosError, ErrorCode

MAX_DECIMALS = 18
# Development networks accept devnet mints; localnet is the sandbox chain (DESIGN §7).
DEVNET_NETWORKS = frozenset({"devnet", "testnet", "localnet"})


class AssetType(StrEnum):
    FIAT = "fiat"  # paid through Stripe
    SPL = "spl"  # paid as a Solana SPL token transfer


@dataclass(frozen=True, slots=True)
class AssetMetadata:
    """Backend-specific identifiers: Stripe's currency code, or Solana mints."""

    stripe_currency: str | None = None
    solana_mint: str | None = None  # mainnet-beta mint
    devnet_mint: str | None = None  # accepted besides solana_mint on devnet/testnet (DESIGN §7)


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    decimals: int
    type: AssetType
    metadata: AssetMetadata = field(default_factory=AssetMetadata)
    usd_pegged: bool = False  # 1 unit == 1 USD for fixed discounts (spec 05)

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("asset code required")
        if not 0 <= self.decimals <= MAX_DECIMALS:
            raise ValueError(f"asset decimals must be 0..{MAX_DECIMALS}")

    def is_stripe_currency(self) -> bool:
        return self.type is AssetType.FIAT

    def is_spl_token(self) -> bool:
        return self.type is AssetType.SPL

    def stripe_currency(self) -> str:
        if not self.is_stripe_currency() or not self.metadata.stripe_currency:
            raise CedrosError(ErrorCode.CONFIG_ERROR, f"{self.code} is not a Stripe currency")
        return self.metadata.stripe_currency

    def solana_mint(self) -> str:
        if not self.is_spl_token() or not self.metadata.solana_mint:
            raise CedrosError(ErrorCode.CONFIG_ERROR, f"{self.code} is not an SPL token")
        return self.metadata.solana_mint

    def mints(self, network: str | None = None) -> tuple[str, ...]:
        """Mints a payment in this asset may use on `network` (all known ones if None)."""
        md = self.metadata
        found = [md.solana_mint]
        if network is None or network in DEVNET_NETWORKS:
            found.append(md.devnet_mint)
        return tuple(m for m in found if m)

    def is_usd_equivalent(self, other: Asset) -> bool:
        """Same unit of value: same code, or both USD-pegged (spec 05 equivalence)."""
        return self.code == other.code or (self.usd_pegged and other.usd_pegged)


class UnknownAssetError(CedrosError):
    def __init__(self, what: str) -> None:
        super().__init__(ErrorCode.INVALID_FIELD, f"unknown asset: {what}", {"asset": what})


class AssetRegistry:
    """Read-only lookup by code (case-insensitive) and by mint."""

    __slots__ = ("_by_code", "_by_mint")

    def __init__(self, assets: Iterable[Asset]) -> None:
        by_code: dict[str, Asset] = {}
        for asset in assets:
            by_code[asset.code.upper()] = asset
        by_mint = {m: a for a in by_code.values() for m in a.mints()}
        self._by_code: Mapping[str, Asset] = MappingProxyType(by_code)
        self._by_mint: Mapping[str, Asset] = MappingProxyType(by_mint)

    def find(self, code: str) -> Asset | None:
        return self._by_code.get(code.strip().upper())

    def get(self, code: str) -> Asset:
        asset = self.find(code)
        if asset is None:
            raise UnknownAssetError(code)
        return asset

    def by_mint(self, mint: str) -> Asset | None:
        return self._by_mint.get(mint.strip())

    def with_asset(self, asset: Asset) -> AssetRegistry:
        """A new registry with `asset` added (replacing one of the same code)."""
        return AssetRegistry([*self._by_code.values(), asset])

    def list(self) -> tuple[Asset, ...]:
        return tuple(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.find(code) is not None

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)


USDC_MAINNET_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDC_DEVNET_MINT = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
USDT_MINT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
PYUSD_MINT = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"
CASH_MINT = "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH"
WRAPPED_SOL_MINT = "So11111111111111111111111111111111111111112"


def _fiat(code: str, *, usd_pegged: bool = False) -> Asset:
    return Asset(code, 2, AssetType.FIAT, AssetMetadata(stripe_currency=code.lower()), usd_pegged)


def _spl(
    code: str, decimals: int, mint: str, *, devnet: str | None = None, usd_pegged: bool = True
) -> Asset:
    md = AssetMetadata(solana_mint=mint, devnet_mint=devnet)
    return Asset(code, decimals, AssetType.SPL, md, usd_pegged)


USD = _fiat("USD", usd_pegged=True)
EUR = _fiat("EUR")
USDC = _spl("USDC", 6, USDC_MAINNET_MINT, devnet=USDC_DEVNET_MINT)
USDT = _spl("USDT", 6, USDT_MINT)
PYUSD = _spl("PYUSD", 6, PYUSD_MINT)
CASH = _spl("CASH", 6, CASH_MINT)
# Spec 05 lists SOL as an SPL asset (wrapped SOL); it is not pegged.
SOL = _spl("SOL", 9, WRAPPED_SOL_MINT, usd_pegged=False)

DEFAULT_REGISTRY = AssetRegistry([USD, EUR, USDC, USDT, SOL, PYUSD, CASH])

# Spec 17: the only tokens `x402.token_mint` may name.
PAYMENT_STABLECOINS: tuple[Asset, ...] = (USDC, USDT, PYUSD, CASH)


def get_asset(code: str) -> Asset:
    """Look up a pre-registered asset by code, case-insensitively; unknown -> invalid_field."""
    return DEFAULT_REGISTRY.get(code)


def find_asset(code: str) -> Asset | None:
    return DEFAULT_REGISTRY.find(code)


def asset_by_mint(mint: str) -> Asset | None:
    return DEFAULT_REGISTRY.by_mint(mint)


def list_assets() -> tuple[Asset, ...]:
    return DEFAULT_REGISTRY.list()


def stablecoin_for_mint(mint: str, network: str | None = None) -> Asset | None:
    """The payment stablecoin a mint belongs to on `network`, or None (spec 17 validation)."""
    mint = mint.strip()
    for asset in PAYMENT_STABLECOINS:
        if mint in asset.mints(network):
            return asset
    return None
