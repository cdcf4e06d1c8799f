"""Asset registry rules: spec 05 "Asset" / "Pre-Registered Assets", spec 17 token mints."""

from __future__ import annotations

import pytest

from cedros_pay.core.assets import (
    CASH,
    DEFAULT_REGISTRY,
    EUR,
    PAYMENT_STABLECOINS,
    PYUSD,
    SOL,
    USD,
    USDC,
    USDC_DEVNET_MINT,
    USDT,
    Asset,
    AssetMetadata,
    AssetRegistry,
    AssetType,
    UnknownAssetError,
    asset_by_mint,
    find_asset,
    get_asset,
    list_assets,
    stablecoin_for_mint,
)
from cedros_pay.core.errors import CedrosError, ErrorCode


@pytest.mark.parametrize(
    ("code", "decimals", "type_", "stripe", "mint"),
    [
        ("USD", 2, AssetType.FIAT, "usd", None),
        ("EUR", 2, AssetType.FIAT, "eur", None),
        ("USDC", 6, AssetType.SPL, None, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
        ("USDT", 6, AssetType.SPL, None, "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"),
        ("SOL", 9, AssetType.SPL, None, "So11111111111111111111111111111111111111112"),
        ("PYUSD", 6, AssetType.SPL, None, "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"),
        ("CASH", 6, AssetType.SPL, None, "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH"),
    ],
)
def test_pre_registered_assets_match_spec05_table(
    code: str, decimals: int, type_: AssetType, stripe: str | None, mint: str | None
) -> None:
    asset = get_asset(code)
    assert (asset.code, asset.decimals, asset.type) == (code, decimals, type_)
    assert asset.metadata.stripe_currency == stripe
    assert asset.metadata.solana_mint == mint


def test_registry_holds_exactly_the_seven_pre_registered_assets() -> None:
    assert {a.code for a in list_assets()} == {"USD", "EUR", "USDC", "USDT", "SOL", "PYUSD", "CASH"}
    assert len(DEFAULT_REGISTRY) == 7


@pytest.mark.parametrize(
    ("asset", "pegged"),
    [
        (USD, True),
        (USDC, True),
        (USDT, True),
        (PYUSD, True),
        (CASH, True),
        (EUR, False),
        (SOL, False),
    ],
)
def test_usd_pegged_flags_follow_spec05_equivalence_list(asset: Asset, pegged: bool) -> None:
    assert asset.usd_pegged is pegged


@pytest.mark.parametrize("a", [USD, USDC, USDT, PYUSD, CASH])
@pytest.mark.parametrize("b", [USD, USDC, USDT, PYUSD, CASH])
def test_usd_pegged_assets_are_mutually_equivalent(a: Asset, b: Asset) -> None:
    assert a.is_usd_equivalent(b)


@pytest.mark.parametrize(("a", "b"), [(USD, EUR), (USDC, SOL), (EUR, SOL)])
def test_other_assets_are_only_equivalent_to_themselves(a: Asset, b: Asset) -> None:
    assert not a.is_usd_equivalent(b)
    assert a.is_usd_equivalent(a)


@pytest.mark.parametrize("code", ["usdc", "Usdc", "USDC", " usdc "])
def test_lookup_by_code_is_case_insensitive(code: str) -> None:
    assert get_asset(code) is USDC
    assert find_asset(code) is USDC
    assert code in DEFAULT_REGISTRY


def test_unknown_code_is_an_invalid_field_error() -> None:
    assert find_asset("DOGE") is None
    with pytest.raises(UnknownAssetError) as err:
        get_asset("DOGE")
    assert err.value.code is ErrorCode.INVALID_FIELD
    assert err.value.http_status == 400
    assert err.value.details == {"asset": "DOGE"}


@pytest.mark.parametrize("asset", [USDC, USDT, SOL, PYUSD, CASH])
def test_lookup_by_mint(asset: Asset) -> None:
    assert asset_by_mint(asset.solana_mint()) is asset


def test_devnet_usdc_mint_resolves_to_usdc() -> None:
    assert asset_by_mint(USDC_DEVNET_MINT) is USDC
    assert asset_by_mint("NotAMint111111111111111111111111111111111") is None


def test_devnet_mint_is_accepted_only_on_devnet_and_testnet() -> None:
    assert USDC.mints("mainnet-beta") == (USDC.solana_mint(),)
    assert USDC.mints("devnet") == (USDC.solana_mint(), USDC_DEVNET_MINT)
    assert USDC.mints("testnet") == (USDC.solana_mint(), USDC_DEVNET_MINT)
    assert USDC.mints() == (USDC.solana_mint(), USDC_DEVNET_MINT)
    assert USD.mints() == ()


def test_kind_predicates_and_backend_identifiers() -> None:
    assert USD.is_stripe_currency() and not USD.is_spl_token()
    assert USDC.is_spl_token() and not USDC.is_stripe_currency()
    assert USD.stripe_currency() == "usd"
    assert EUR.stripe_currency() == "eur"
    assert USDC.solana_mint() == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def test_asking_a_fiat_for_a_mint_or_a_token_for_a_stripe_currency_is_an_error() -> None:
    with pytest.raises(CedrosError) as err:
        USD.solana_mint()
    assert err.value.code is ErrorCode.CONFIG_ERROR
    with pytest.raises(CedrosError):
        USDC.stripe_currency()


@pytest.mark.parametrize(
    ("symbol", "mint"),
    [
        ("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
        ("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"),
        ("PYUSD", "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"),
        ("CASH", "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH"),
    ],
)
def test_spec17_allowed_token_mints(symbol: str, mint: str) -> None:
    found = stablecoin_for_mint(mint)
    assert found is not None and found.code == symbol


def test_only_stablecoins_are_payment_tokens() -> None:
    assert [a.code for a in PAYMENT_STABLECOINS] == ["USDC", "USDT", "PYUSD", "CASH"]
    assert stablecoin_for_mint(SOL.solana_mint()) is None
    assert stablecoin_for_mint("garbage") is None


def test_devnet_usdc_is_a_payment_token_only_off_mainnet() -> None:
    assert stablecoin_for_mint(USDC_DEVNET_MINT, "devnet") is USDC
    assert stablecoin_for_mint(USDC_DEVNET_MINT, "mainnet-beta") is None


def test_with_asset_returns_a_new_registry_and_leaves_the_default_alone() -> None:
    bonk = Asset("BONK", 5, AssetType.SPL, AssetMetadata(solana_mint="BonkMint"))
    extended = DEFAULT_REGISTRY.with_asset(bonk)
    assert extended.get("bonk") is bonk
    assert extended.by_mint("BonkMint") is bonk
    assert len(extended) == 8
    assert find_asset("BONK") is None
    assert len(DEFAULT_REGISTRY) == 7


def test_with_asset_replaces_an_asset_of_the_same_code() -> None:
    custom = Asset("USDC", 6, AssetType.SPL, AssetMetadata(solana_mint="OtherMint"))
    registry = DEFAULT_REGISTRY.with_asset(custom)
    assert registry.get("USDC") is custom
    assert registry.by_mint("OtherMint") is custom
    assert len(registry) == 7


def test_registry_iterates_its_assets() -> None:
    registry = AssetRegistry([USD, USDC])
    assert list(registry) == [USD, USDC]
    assert registry.list() == (USD, USDC)


@pytest.mark.parametrize(("code", "decimals"), [("", 2), ("X", -1), ("X", 19)])
def test_asset_definition_is_validated(code: str, decimals: int) -> None:
    with pytest.raises(ValueError):
        Asset(code, decimals, AssetType.FIAT)
