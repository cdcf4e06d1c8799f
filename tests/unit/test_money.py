"""Money rules from spec 05 (Money Models) and spec 16 (Amount Formats)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from cedros_pay.core.assets import CASH, EUR, PYUSD, SOL, USD, USDC, USDT, Asset
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.money import (
    INT64_MAX,
    INT64_MIN,
    AssetMismatchError,
    InvalidMoneyFormatError,
    Money,
    MoneyDivisionByZeroError,
    MoneyOverflowError,
    NegativeAmountError,
    RoundingMode,
    display,
    sum_money,
)

STANDARD = RoundingMode.STANDARD
CEILING = RoundingMode.CEILING


# --- conversions: spec 16 "Conversion Examples" and the atomic-unit tables of 05 and 16 -------


@pytest.mark.parametrize(
    ("asset", "major", "atomic"),
    [
        (USD, 10.50, 1050),  # exact
        (USD, 10.505, 1051),  # rounds up to 10.51
        (USD, 10.501, 1051),  # rounds up
        (USDC, 1.5, 1_500_000),  # exact
        (USDC, 1.500001, 1_500_001),  # exact
        (USDC, 1.5000005, 1_500_001),  # rounds up
        (SOL, 0.5, 500_000_000),  # exact
    ],
)
def test_from_major_matches_spec16_conversion_table(
    asset: Asset, major: float, atomic: int
) -> None:
    assert Money.from_major(asset, major).atomic == atomic


@pytest.mark.parametrize(
    ("asset", "major", "atomic"),
    [
        (USD, "10.50", 1050),  # spec 05/16: $10.50 = 1050 cents
        (USDC, "1.5", 1_500_000),  # 1.5 USDC = 1,500,000 atomic
        (USDT, "1.5", 1_500_000),  # USDC/USDT row of spec 05
        (SOL, "0.5", 500_000_000),  # 0.5 SOL = 500,000,000 lamports
    ],
)
def test_atomic_unit_tables_hold_both_ways(asset: Asset, major: str, atomic: int) -> None:
    money = Money.from_major(asset, major)
    assert money.atomic == atomic
    assert money.to_major() == float(major)
    assert money.to_decimal() == Decimal(major)


@pytest.mark.parametrize(
    ("major", "atomic"),
    [(0.07, 7), (1.1, 110), (0.29, 29), (2.675, 268), (19.99, 1999)],
)
def test_from_major_reads_floats_by_their_decimal_text_not_binary_value(
    major: float, atomic: int
) -> None:
    # 0.07 * 100 == 7.000000000000001 in binary floating point; naive ceiling would give 8.
    assert Money.from_major(USD, major).atomic == atomic


@pytest.mark.parametrize(
    ("value", "atomic"),
    [(10, 1000), (Decimal("10.001"), 1001), ("  3.2 ", 320), ("1e2", 10_000), (".5", 50)],
)
def test_from_major_accepts_int_decimal_and_text(value: int | Decimal | str, atomic: int) -> None:
    assert Money.from_major(USD, value).atomic == atomic


def test_from_major_ceiling_is_towards_positive_infinity_for_negatives() -> None:
    assert Money.from_major(USD, -1.005).atomic == -100


@pytest.mark.parametrize(
    "bad", ["", "abc", "1.2.3", "NaN", "inf", "1,5", "0x10", "1" * 101, float("nan"), True]
)
def test_from_major_rejects_malformed_amounts(bad: object) -> None:
    with pytest.raises(InvalidMoneyFormatError) as err:
        Money.from_major(USD, bad)  # type: ignore[arg-type]
    assert err.value.code is ErrorCode.INVALID_AMOUNT


def test_to_major_is_atomic_over_ten_to_the_decimals() -> None:
    assert Money(USD, 1050).to_major() == 10.5
    assert Money(USDC, 1_500_001).to_major() == 1.500001
    assert Money(SOL, 1).to_major() == 1e-9


def test_x402_string_amounts_are_atomic_units() -> None:
    money = Money.from_atomic(USDC, "1000000")
    assert money.atomic == 1_000_000
    assert money.atomic_str() == "1000000"
    assert Money.from_atomic(USD, -5).atomic == -5


@pytest.mark.parametrize("bad", ["", "1.0", "1e6", " 1", "+1", "abc", "9" * 30])
def test_from_atomic_rejects_non_integer_text(bad: str) -> None:
    with pytest.raises(InvalidMoneyFormatError):
        Money.from_atomic(USDC, bad)


def test_constructors_new_zero_and_atomic_accessor() -> None:
    assert Money(USD, 7).to_atomic() == 7
    assert Money.zero(USDC).is_zero()
    assert Money.zero(USDC).asset is USDC


# --- int64 overflow ------------------------------------------------------------------------------


def test_int64_limits_are_accepted() -> None:
    assert Money(USD, INT64_MAX).atomic == INT64_MAX
    assert Money(USD, INT64_MIN).atomic == INT64_MIN


@pytest.mark.parametrize(
    "operation",
    [
        lambda: Money(USD, INT64_MAX + 1),
        lambda: Money(USD, INT64_MIN - 1),
        lambda: Money(USD, INT64_MAX).add(Money(USD, 1)),
        lambda: Money(USD, INT64_MIN).sub(Money(USD, 1)),
        lambda: Money(USD, INT64_MAX // 2 + 1).mul(2),
        lambda: Money(USD, INT64_MIN).negate(),
        lambda: Money(USD, INT64_MIN).abs(),
        lambda: Money.from_major(USD, 1e17),
        lambda: Money.from_major(SOL, "1e999999999"),
        lambda: Money.from_atomic(USD, str(INT64_MAX + 1)),
        lambda: Money(USD, 10_000).convert_to(USDC).mul(10**12),
    ],
)
def test_int64_overflow_is_an_error(operation: object) -> None:
    with pytest.raises(MoneyOverflowError):
        operation()  # type: ignore[operator]


def test_overflow_error_is_a_bad_request_not_a_500() -> None:
    with pytest.raises(CedrosError) as err:
        Money(USD, INT64_MAX).add(Money(USD, 1))
    assert err.value.http_status == 400


def test_atomic_must_be_an_int() -> None:
    with pytest.raises(InvalidMoneyFormatError):
        Money(USD, 1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidMoneyFormatError):
        Money(USD, True)


# --- arithmetic ----------------------------------------------------------------------------------


def test_add_sub_mul_work_in_atomic_units() -> None:
    a, b = Money(USDC, 1_500_000), Money(USDC, 250_000)
    assert a.add(b) == Money(USDC, 1_750_000)
    assert a.sub(b) == Money(USDC, 1_250_000)
    assert a.mul(3) == Money(USDC, 4_500_000)
    assert a + b == a.add(b)
    assert a - b == a.sub(b)
    assert a * 3 == 3 * a == a.mul(3)


@pytest.mark.parametrize(
    "operation",
    [
        lambda: Money(USD, 1).add(Money(USDC, 1)),
        lambda: Money(USD, 1).sub(Money(EUR, 1)),
        lambda: Money(USD, 1).less_than(Money(USDC, 1)),
        lambda: Money(USD, 1).greater_than(Money(USDC, 1)),
        lambda: Money(USD, 1) < Money(SOL, 1),
        lambda: sum_money([Money(USD, 1), Money(USDC, 1)]),
    ],
)
def test_mismatched_asset_arithmetic_is_an_error(operation: object) -> None:
    with pytest.raises(AssetMismatchError) as err:
        operation()  # type: ignore[operator]
    assert err.value.code is ErrorCode.INTERNAL_ERROR


def test_equality_across_assets_is_false_not_an_error() -> None:
    assert not Money(USD, 100).equal(Money(USDC, 100))
    assert Money(USD, 100) != Money(USDC, 100)


@pytest.mark.parametrize(
    ("atomic", "divisor", "mode", "expected"),
    [
        (10, 4, STANDARD, 3),  # 2.5 -> 3 (half up)
        (10, 3, STANDARD, 3),  # 3.33 -> 3
        (10, 3, CEILING, 4),
        (-10, 4, STANDARD, -2),  # -2.5 -> -2 (half towards +inf)
        (9, 3, CEILING, 3),
    ],
)
def test_div_rounds_by_mode(atomic: int, divisor: int, mode: RoundingMode, expected: int) -> None:
    assert Money(USD, atomic).div(divisor, mode).atomic == expected


def test_div_by_zero_is_an_error() -> None:
    with pytest.raises(MoneyDivisionByZeroError):
        Money(USD, 10).div(0)


@pytest.mark.parametrize(
    ("atomic", "bps", "mode", "expected"),
    [
        (10_000, 250, STANDARD, 250),  # 2.5% of $100 = $2.50
        (100, 250, STANDARD, 3),  # 2.5 cents -> 3 ($0.025 -> $0.03)
        (100, 240, STANDARD, 2),  # 2.4 cents -> 2 ($0.024 -> $0.02)
        (100, 240, CEILING, 3),  # $0.024 -> $0.03
        (10, 100, CEILING, 1),  # $0.001 -> $0.01
        (10, 100, STANDARD, 0),
        (1050, 0, STANDARD, 0),
    ],
)
def test_mul_basis_points_rounds_by_mode(
    atomic: int, bps: int, mode: RoundingMode, expected: int
) -> None:
    assert Money(USD, atomic).mul_basis_points(bps, mode).atomic == expected


def test_mul_basis_points_default_is_standard() -> None:
    assert Money(USD, 100).mul_basis_points(250).atomic == 3


@pytest.mark.parametrize(
    ("percent", "mode", "expected"),
    [(10, STANDARD, 100), (12.5, STANDARD, 125), ("33.333", STANDARD, 333), (0.15, CEILING, 2)],
)
def test_mul_percent(percent: float | str, mode: RoundingMode, expected: int) -> None:
    assert Money(USD, 1000).mul_percent(percent, mode).atomic == expected


def test_multiply_by_float_is_exact_and_half_up() -> None:
    assert Money(USD, 1000).multiply_by_float(0.1).atomic == 100
    assert Money(USD, 5).multiply_by_float(0.5).atomic == 3  # 2.5 -> 3
    assert Money(USD, 5).multiply_by_float(0.5, CEILING).atomic == 3
    assert Money(USD, 3).multiply_by_float(0.1, CEILING).atomic == 1


# --- rounding modes (spec 05 "Rounding Modes") ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "major", "rounded"),
    [
        (STANDARD, "0.025", "0.03"),
        (STANDARD, "0.024", "0.02"),
        (CEILING, "0.024", "0.03"),
        (CEILING, "0.001", "0.01"),
    ],
)
def test_rounding_modes_table(mode: RoundingMode, major: str, rounded: str) -> None:
    amount = Money.from_major(USDC, major)
    assert amount.round_to_cents(mode) == Money.from_major(USDC, rounded)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("standard", STANDARD),
        ("ceiling", CEILING),
        ("", STANDARD),
        (None, STANDARD),
        (" Ceiling ", CEILING),
    ],
)
def test_rounding_mode_parses_config_values(text: str | None, mode: RoundingMode) -> None:
    assert RoundingMode.parse(text) is mode


def test_rounding_mode_rejects_unknown_values() -> None:
    with pytest.raises(ValueError):
        RoundingMode.parse("bankers")


# --- RoundUpToCents (spec 05) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("major", "rounded"),
    [
        ("0.184", "0.19"),  # positive: ceiling
        ("1.001", "1.01"),
        ("-0.184", "-0.18"),  # negative (refunds): towards zero
        ("-1.009", "-1.00"),
        ("1.00", "1.00"),
    ],
)
def test_round_up_to_cents_table(major: str, rounded: str) -> None:
    assert Money.from_major(USDC, major).round_up_to_cents() == Money.from_major(USDC, rounded)


@pytest.mark.parametrize(
    ("atomic", "rounded"),
    [
        (1_840_001, 1_850_000),  # spec's example row: 1.840001 -> 1.85
        (184_001, 190_000),  # its parenthetical: 0.184001 -> 0.19
        (1_850_000, 1_850_000),
        (-184_001, -180_000),
    ],
)
def test_round_up_to_cents_on_usdc_atomic_units(atomic: int, rounded: int) -> None:
    assert Money(USDC, atomic).round_up_to_cents().atomic == rounded


@pytest.mark.parametrize("atomic", [1050, 1, -1, 0])
def test_round_up_to_cents_leaves_two_decimal_assets_alone(atomic: int) -> None:
    assert Money(USD, atomic).round_up_to_cents().atomic == atomic


def test_round_up_to_cents_on_nine_decimals() -> None:
    assert Money(SOL, 1).round_up_to_cents().atomic == 10_000_000


# --- discounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("atomic", "percent", "mode", "expected"),
    [
        (1000, 10, STANDARD, 900),
        (1000, 0, STANDARD, 1000),
        (1000, 100, STANDARD, 0),
        (999, 15, STANDARD, 849),  # 849.15
        (999, 15, CEILING, 850),
        (1005, 50, STANDARD, 503),  # 502.5 -> 503
        (1000, 33.333, STANDARD, 667),  # 666.67
    ],
)
def test_apply_percentage_discount(
    atomic: int, percent: float, mode: RoundingMode, expected: int
) -> None:
    assert Money(USD, atomic).apply_percentage_discount(percent, mode).atomic == expected


@pytest.mark.parametrize("percent", [-1, 100.5, 150])
def test_percentage_discount_outside_0_to_100_is_an_error(percent: float) -> None:
    with pytest.raises(InvalidMoneyFormatError):
        Money(USD, 1000).apply_percentage_discount(percent)


def test_apply_fixed_discount_subtracts_and_floors_at_zero() -> None:
    assert Money(USD, 1000).apply_fixed_discount(Money(USD, 500)) == Money(USD, 500)
    assert Money(USD, 300).apply_fixed_discount(Money(USD, 500)) == Money(USD, 0)


def test_negative_fixed_discount_is_an_error() -> None:
    with pytest.raises(NegativeAmountError):
        Money(USD, 1000).apply_fixed_discount(Money(USD, -1))


# --- USD-pegged equivalence (spec 05) ------------------------------------------------------------


@pytest.mark.parametrize("price_asset", [USD, USDC, USDT, PYUSD, CASH])
def test_five_dollars_off_works_on_every_usd_pegged_asset(price_asset: Asset) -> None:
    price = Money.from_major(price_asset, "12.50")
    coupon = Money.from_major(USD, "5")
    assert price.apply_fixed_discount(coupon) == Money.from_major(price_asset, "7.50")


def test_stablecoin_discount_on_fiat_price_rounds_the_discount_down() -> None:
    # 0.123456 USDC off $10.00 is 12.3456 cents: the merchant gives 12, never 13.
    price = Money(USD, 1000)
    assert price.apply_fixed_discount(Money(USDC, 123_456)) == Money(USD, 988)


@pytest.mark.parametrize("other", [EUR, SOL])
def test_non_pegged_assets_are_not_equivalent(other: Asset) -> None:
    with pytest.raises(AssetMismatchError):
        Money(USD, 1000).apply_fixed_discount(Money(other, 1))
    with pytest.raises(AssetMismatchError):
        Money(USDC, 1).convert_to(other)


def test_convert_to_rescales_pegged_amounts() -> None:
    assert Money(USD, 500).convert_to(USDC) == Money(USDC, 5_000_000)
    assert Money(USDC, 1_234_567).convert_to(USD) == Money(USD, 124)  # ceiling by default
    assert Money(USDC, 1_234_567).convert_to(USD, STANDARD) == Money(USD, 123)
    assert Money(USDC, 1_239_999).convert_to(USD, None) == Money(USD, 123)


# --- predicates, comparisons ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("atomic", "zero", "positive", "negative"),
    [(0, True, False, False), (1, False, True, False), (-1, False, False, True)],
)
def test_sign_predicates(atomic: int, zero: bool, positive: bool, negative: bool) -> None:
    money = Money(USDC, atomic)
    assert (money.is_zero(), money.is_positive(), money.is_negative()) == (
        zero,
        positive,
        negative,
    )


def test_comparisons_are_in_atomic_units() -> None:
    small, big = Money(USDC, 999_999), Money(USDC, 1_000_000)
    assert small.less_than(big) and big.greater_than(small)
    assert small < big <= big and big > small >= small
    assert not big.less_than(big)
    assert big.equal(Money.from_major(USDC, 1))


def test_negate_and_abs() -> None:
    assert Money(USD, 5).negate() == Money(USD, -5) == -Money(USD, 5)
    assert Money(USD, -5).abs() == Money(USD, 5) == abs(Money(USD, -5))


def test_sum_money() -> None:
    total = sum_money([Money(USDC, 1), Money(USDC, 2), Money(USDC, 3)])
    assert total == Money(USDC, 6)
    assert sum_money([], USDC) == Money.zero(USDC)
    with pytest.raises(InvalidMoneyFormatError):
        sum_money([])


def test_money_is_immutable_and_hashable() -> None:
    money = Money(USD, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.atomic = 2  # type: ignore[misc]
    assert {Money(USD, 1), Money(USD, 1)} == {money}


# --- text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(USD, 1050), "10.50 USD"),
        (Money(USDC, 1_500_000), "1.500000 USDC"),
        (Money(USD, -5), "-0.05 USD"),
        (Money(SOL, 1), "0.000000001 SOL"),
    ],
)
def test_str_shows_all_decimals_and_the_code(money: Money, text: str) -> None:
    assert str(money) == text


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(USD, 1050), "10.50 USD"),
        (Money(USD, 1000), "10.00 USD"),
        (Money(USDC, 1_500_000), "1.50 USDC"),
        (Money(USDC, 1_234_567), "1.234567 USDC"),
        (Money(USDC, 1), "0.000001 USDC"),
        (Money(SOL, 500_000_000), "0.50 SOL"),
        (Money(USDC, -2_500_000), "-2.50 USDC"),
    ],
)
def test_display_keeps_two_decimals_and_trims_the_rest(money: Money, text: str) -> None:
    assert display(money) == text


def test_major_str_can_trim_everything_for_memos() -> None:
    assert Money(USDC, 1_500_000).major_str(min_decimals=0) == "1.5"
    assert Money(USD, 1000).major_str(min_decimals=0) == "10"
    zero_decimals = Asset("PTS", 0, USD.type)
    assert Money(zero_decimals, 42).major_str() == "42"
