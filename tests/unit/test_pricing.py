"""Pricing engine: coupon validity, selection, stacking and the priced flows (specs 05, 19, 23).

Every expected amount is worked out by hand in atomic units (cents for USD, micro-units for
USDC, lamports for SOL) in the comment beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cedros_pay.core.assets import EUR, SOL, USD, USDC, USDT
from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import Money, RoundingMode
from cedros_pay.resolvers.pricing import (
    CouponPhase,
    PaymentMethod,
    Priced,
    Pricing,
    coupon_applies,
    coupon_metadata,
    coupon_problem,
    select_coupons,
    stack_coupons,
)
from cedros_pay.storage.store import Store, memory_store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
STD = RoundingMode.STANDARD
CEIL = RoundingMode.CEILING


def pct(code: str, value: str, **kw: Any) -> Coupon:
    return Coupon(code=code, discount_type="percentage", discount_value=Decimal(value), **kw)


def off(code: str, value: str, currency: str = "usd", **kw: Any) -> Coupon:
    return Coupon(code=code, discount_type="fixed", discount_value=Decimal(value),
                  currency=currency, **kw)


def usd(cents: int) -> Money:
    return Money(USD, cents)


def usdc(micro: int) -> Money:
    return Money(USDC, micro)


# A catalog coupon for the product under test, a site-wide checkout coupon (both auto).
CAT: dict[str, Any] = {
    "auto_apply": True, "applies_at": "catalog", "scope": "specific", "product_ids": ["ebook"],
}
CHK: dict[str, Any] = {"auto_apply": True, "applies_at": "checkout", "scope": "all"}


# --- StackCouponsOnMoney (spec 19) -------------------------------------------------------------


def test_stack_spec_example_usd() -> None:
    # $10.00 x 0.9 = $9.00; x 0.8 = $7.20; - ($1 + $0.50) = $5.70
    coupons = [pct("A", "10"), pct("B", "20"), off("C", "1"), off("D", "0.50")]
    assert stack_coupons(usd(1000), coupons, STD) == usd(570)


def test_stack_spec_example_on_usdc_uses_usd_pegged_fixed_discounts() -> None:
    coupons = [pct("A", "10"), pct("B", "20"), off("C", "1"), off("D", "0.50")]
    assert stack_coupons(usdc(10_000_000), coupons, STD) == usdc(5_700_000)


def test_stack_applies_percentages_before_fixed_whatever_the_order() -> None:
    # $10 x 0.9 - $1 = $8.00 (not ($10 - $1) x 0.9 = $8.10)
    assert stack_coupons(usd(1000), [off("F", "1"), pct("P", "10")], STD) == usd(800)


def test_stack_sums_fixed_discounts_and_subtracts_once() -> None:
    coupons = [off("A", "0.25"), off("B", "0.25"), off("C", "0.50")]
    assert stack_coupons(usd(1000), coupons, STD) == usd(900)


@pytest.mark.parametrize(("percent", "expected"), [
    ("0", 1000), ("100", 0), ("100.0", 0), ("101", 1000), ("-5", 1000), ("12.5", 875),
])
def test_stack_percentage_bounds(percent: str, expected: int) -> None:
    assert stack_coupons(usd(1000), [pct("P", percent)], STD) == usd(expected)


def test_stack_fixed_larger_than_price_floors_at_zero() -> None:
    assert stack_coupons(usd(500), [off("BIG", "15")], STD) == usd(0)
    assert stack_coupons(usdc(500_000), [pct("P", "50"), off("BIG", "1")], STD) == usdc(0)


@pytest.mark.parametrize(("currency", "price", "expected"), [
    ("usd", usdc(5_000_000), usdc(3_000_000)),  # $2 off 5 USDC: pegged
    ("usdc", usd(500), usd(300)),  # 2 USDC off $5.00: pegged
    ("USDT", usdc(5_000_000), usdc(3_000_000)),
    ("pyusd", Money(USDT, 5_000_000), Money(USDT, 3_000_000)),
    ("cash", usd(500), usd(300)),
    ("", usdc(5_000_000), usdc(3_000_000)),  # no currency = dollars
    ("eur", usd(500), usd(500)),  # incompatible: skipped
    ("usd", Money(EUR, 500), Money(EUR, 500)),  # EUR is not pegged
    ("eur", Money(EUR, 500), Money(EUR, 300)),  # same code applies
    ("", Money(SOL, 1_000_000_000), Money(SOL, 1_000_000_000)),  # dollars never off SOL
    ("usd", Money(SOL, 1_000_000_000), Money(SOL, 1_000_000_000)),
    ("xyz", usd(500), usd(500)),  # unknown currency: skipped
])
def test_stack_fixed_discount_currency(currency: str, price: Money, expected: Money) -> None:
    assert stack_coupons(price, [off("F", "2", currency)], STD) == expected


def test_stack_fixed_in_same_non_pegged_token() -> None:
    # 0.25 SOL off 1 SOL = 750_000_000 lamports
    quarter = [off("S", "0.25", "sol")]
    assert stack_coupons(Money(SOL, 10**9), quarter, STD) == Money(SOL, 750_000_000)


def test_stack_skips_an_incompatible_fixed_but_keeps_the_others() -> None:
    coupons = [off("E", "2", "eur"), off("U", "1", "usd"), pct("P", "10")]
    assert stack_coupons(usd(1000), coupons, STD) == usd(800)  # 900 - 100


@pytest.mark.parametrize(("rounding", "expected"), [(STD, 849), (CEIL, 850)])
def test_stack_rounding_mode_on_a_fraction_of_a_cent(rounding: RoundingMode, expected: int) -> None:
    # 999 x 0.85 = 849.15 cents
    assert stack_coupons(usd(999), [pct("P", "15")], rounding) == usd(expected)


def test_stack_standard_rounds_half_up() -> None:
    # 5 x 0.5 = 2.5 -> 3 ; 1001 x 0.75 = 750.75 -> 751
    assert stack_coupons(usd(5), [pct("P", "50")], STD) == usd(3)
    assert stack_coupons(usd(1001), [pct("P", "25")], STD) == usd(751)


@pytest.mark.parametrize(("rounding", "expected"), [(STD, 722), (CEIL, 723)])
def test_stack_rounds_after_each_percentage(rounding: RoundingMode, expected: int) -> None:
    # standard: 849.15 -> 849, 849 x 0.85 = 721.65 -> 722
    # ceiling:  849.15 -> 850, 850 x 0.85 = 722.5  -> 723
    assert stack_coupons(usd(999), [pct("A", "15"), pct("B", "15")], rounding) == usd(expected)


def test_stack_fixed_discount_below_one_atomic_unit_is_dropped() -> None:
    # $0.004 is 0.4 cent (nothing off USD) but 4000 micro-USDC
    assert stack_coupons(usd(999), [off("TINY", "0.004")], STD) == usd(999)
    assert stack_coupons(usdc(9_990_000), [off("TINY", "0.004")], STD) == usdc(9_986_000)


def test_stack_absurd_fixed_value_just_makes_it_free() -> None:
    assert stack_coupons(usdc(9_990_000), [off("HUGE", "1E+999998")], STD) == usdc(0)


def test_stack_decimal_tenth_is_exact() -> None:
    assert stack_coupons(usdc(1_000_000), [off("DIME", "0.1")], STD) == usdc(900_000)


def test_stack_ignores_negative_fixed_and_unknown_types() -> None:
    weird = Coupon(code="W", discount_type="bogo", discount_value=Decimal(50))
    assert stack_coupons(usd(1000), [off("NEG", "-1"), weird], STD) == usd(1000)


def test_stack_accepts_type_names_in_any_case() -> None:
    loud = Coupon(code="L", discount_type="PERCENTAGE", discount_value=Decimal(10))
    assert stack_coupons(usd(1000), [loud], STD) == usd(900)


def test_stack_without_coupons_is_the_price() -> None:
    assert stack_coupons(usdc(1_234_567), [], STD) == usdc(1_234_567)


# --- validity and applicability (spec 17, spec 23) ---------------------------------------------


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, None),
    ({"active": False}, ErrorCode.INVALID_COUPON),
    ({"starts_at": NOW + timedelta(seconds=1)}, ErrorCode.INVALID_COUPON),
    ({"starts_at": NOW}, None),
    ({"starts_at": NOW - DAY}, None),
    ({"expires_at": NOW}, ErrorCode.COUPON_EXPIRED),  # must be < expiry (spec 17)
    ({"expires_at": NOW - DAY}, ErrorCode.COUPON_EXPIRED),
    ({"expires_at": NOW + timedelta(seconds=1)}, None),
    ({"usage_limit": 5, "usage_count": 5}, ErrorCode.COUPON_USAGE_LIMIT_REACHED),
    ({"usage_limit": 5, "usage_count": 4}, None),
    ({"usage_limit": 0}, ErrorCode.COUPON_USAGE_LIMIT_REACHED),
    ({"usage_limit": None, "usage_count": 10_000}, None),
    # spec 23 order: inactive first, then start, then expiry, then usage
    ({"active": False, "expires_at": NOW - DAY}, ErrorCode.INVALID_COUPON),
    ({"starts_at": NOW + DAY, "expires_at": NOW - DAY}, ErrorCode.INVALID_COUPON),
    ({"expires_at": NOW - DAY, "usage_limit": 1, "usage_count": 1}, ErrorCode.COUPON_EXPIRED),
    # a naive time (as SQLite returns it) is UTC
    ({"expires_at": datetime(2025, 6, 1, 11, 59)}, ErrorCode.COUPON_EXPIRED),
    ({"expires_at": datetime(2025, 6, 1, 12, 1)}, None),
])
def test_coupon_problem(kw: dict[str, Any], expected: ErrorCode | None) -> None:
    assert coupon_problem(pct("C", "10", **kw), NOW) == expected


@pytest.mark.parametrize(("kw", "product", "method", "expected"), [
    ({"scope": "all"}, "ebook", PaymentMethod.STRIPE, True),
    ({"scope": "all"}, None, PaymentMethod.X402, True),
    ({"scope": "specific", "product_ids": ["ebook"]}, "ebook", PaymentMethod.X402, True),
    ({"scope": "specific", "product_ids": ["ebook"]}, "video", PaymentMethod.X402, False),
    ({"scope": "specific", "product_ids": ["ebook"]}, None, PaymentMethod.X402, False),
    ({"scope": "specific", "product_ids": []}, "ebook", PaymentMethod.X402, False),
    ({"payment_method": "stripe"}, "ebook", PaymentMethod.STRIPE, True),
    ({"payment_method": "stripe"}, "ebook", PaymentMethod.X402, False),
    ({"payment_method": "x402"}, "ebook", PaymentMethod.X402, True),
    ({"payment_method": "x402"}, "ebook", PaymentMethod.STRIPE, False),
    ({"payment_method": ""}, "ebook", PaymentMethod.STRIPE, True),
    ({"payment_method": "X402"}, "ebook", PaymentMethod.X402, True),
])
def test_coupon_applies(kw: dict[str, Any], product: str | None, method: PaymentMethod,
                        expected: bool) -> None:
    assert coupon_applies(pct("C", "10", **kw), product, method) is expected


# --- SelectCouponsForPayment (spec 19, spec 23) -------------------------------------------------


def _codes(coupons: list[Coupon]) -> list[str]:
    return [c.code for c in coupons]


def _select(auto: list[Coupon], manual: Coupon | None, phase: CouponPhase,
            product: str | None = "ebook",
            method: PaymentMethod = PaymentMethod.X402) -> list[str]:
    return _codes(select_coupons(auto, manual, product_id=product, method=method, phase=phase,
                                 now=NOW))


def test_select_keeps_repository_order_and_puts_manual_last() -> None:
    auto = [pct("B", "5", **CAT), pct("A", "5", **CHK), pct("C", "5", **CAT)]
    manual = pct("M", "5")
    assert _select(auto, manual, CouponPhase.ALL) == ["B", "A", "C", "M"]


def test_select_deduplicates_a_manual_code_already_auto_applied() -> None:
    auto = [pct("SAVE", "10", **CAT)]
    assert _select(auto, pct("SAVE", "10", **CAT), CouponPhase.ALL) == ["SAVE"]


def test_select_drops_a_bad_manual_coupon_silently() -> None:
    for manual in (pct("OLD", "10", expires_at=NOW - DAY), pct("OFF", "10", active=False),
                   pct("SOON", "10", starts_at=NOW + DAY),
                   pct("USED", "10", usage_limit=1, usage_count=1),
                   pct("OTHER", "10", scope="specific", product_ids=["video"]),
                   pct("CARD", "10", payment_method="stripe")):
        assert _select([], manual, CouponPhase.ALL) == []


def test_select_ignores_entries_that_are_not_auto_apply() -> None:
    assert _select([pct("MANUAL_ONLY", "10", scope="all")], None, CouponPhase.ALL) == []


def test_select_phase_filters() -> None:
    auto = [
        pct("CAT", "5", **CAT),
        pct("CHK", "5", **CHK),
        pct("CHK_SPECIFIC", "5", **{**CHK, "scope": "specific", "product_ids": ["ebook"]}),
        pct("CAT_ALL", "5", **{**CAT, "scope": "all"}),
        pct("EMPTY_AT", "5", **{**CAT, "applies_at": ""}),
    ]
    assert _select(auto, None, CouponPhase.ALL) == [
        "CAT", "CHK", "CHK_SPECIFIC", "CAT_ALL", "EMPTY_AT"]
    assert _select(auto, None, CouponPhase.CATALOG) == ["CAT", "CAT_ALL", "EMPTY_AT"]
    # ScopeCheckout: applies_at=checkout AND scope=all; for a total there is no product
    assert _select(auto, None, CouponPhase.CHECKOUT, product=None) == ["CHK"]


def test_select_checkout_phase_rejects_a_product_specific_manual_coupon() -> None:
    manual = pct("M", "10", scope="specific", product_ids=["ebook"], applies_at="checkout")
    assert _select([], manual, CouponPhase.CHECKOUT, product=None) == []
    site_wide = pct("S", "10", scope="all", applies_at="checkout")
    assert _select([], site_wide, CouponPhase.CHECKOUT, product=None) == ["S"]


# --- the priced flows ---------------------------------------------------------------------------

EBOOK = Product(id="ebook", description="E-book", fiat_amount=999, fiat_currency="usd",
                crypto_amount=9_990_000, crypto_token="USDC")


async def _pricing(coupons: list[Coupon], rounding: RoundingMode = STD,
                   tenant: str = "default") -> tuple[Pricing, Store, ManualClock]:
    store = memory_store()
    for c in coupons:
        await store.coupons.create(replace(c, tenant_id=tenant))
    clock = ManualClock(NOW)
    return Pricing(store.coupons, clock, rounding), store, clock


@dataclass(frozen=True)
class Case:
    """One coupon configuration priced for the $9.99 / 9.99 USDC e-book."""

    name: str
    coupons: list[Coupon]
    fiat: int  # Stripe amount in cents (ScopeAll, one stacking step)
    crypto: int  # x402 amount in micro-USDC (catalog, then checkout, then up to cents)
    manual: str | None = None
    rounding: RoundingMode = STD
    applied_fiat: list[str] = field(default_factory=list)
    applied_crypto: list[str] = field(default_factory=list)


CASES = [
    Case("no coupons", [], 999, 9_990_000),
    # 999 x 0.9 = 899.1 -> 899 | 9_990_000 x 0.9 = 8_991_000 -> 9_000_000
    Case("auto catalog 10% for the product", [pct("CAT10", "10", **CAT)], 899, 9_000_000,
         applied_fiat=["CAT10"], applied_crypto=["CAT10"]),
    Case("auto catalog 10% for another product",
         [pct("CAT10", "10", **{**CAT, "product_ids": ["video"]})], 999, 9_990_000),
    Case("auto checkout 10% site-wide", [pct("CHK10", "10", **CHK)], 899, 9_000_000,
         applied_fiat=["CHK10"], applied_crypto=["CHK10"]),
    # checkout coupon misconfigured as product-specific: Stripe's ScopeAll takes it,
    # the x402 phases both filter it out
    Case("auto checkout 10% scope specific",
         [pct("CHKS", "10", **{**CHK, "scope": "specific", "product_ids": ["ebook"]})],
         899, 9_990_000, applied_fiat=["CHKS"]),
    # 999 x 0.8 = 799.2 -> 799
    Case("auto 20% stripe only", [pct("CARD20", "20", **CAT, payment_method="stripe")],
         799, 9_990_000, applied_fiat=["CARD20"]),
    # 9_990_000 x 0.8 = 7_992_000 -> 8_000_000
    Case("auto 20% x402 only", [pct("SOL20", "20", **CAT, payment_method="x402")],
         999, 8_000_000, applied_crypto=["SOL20"]),
    # 999 x 0.75 = 749.25 -> 749 | 7_492_500 -> 7_500_000
    Case("manual 25% given", [pct("QUARTER", "25")], 749, 7_500_000, manual="QUARTER",
         applied_fiat=["QUARTER"], applied_crypto=["QUARTER"]),
    Case("manual 25% not given", [pct("QUARTER", "25")], 999, 9_990_000),
    Case("manual code unknown", [], 999, 9_990_000, manual="NOPE"),
    Case("manual expired", [pct("OLD", "25", expires_at=NOW - DAY)], 999, 9_990_000,
         manual="OLD"),
    Case("manual not started", [pct("SOON", "25", starts_at=NOW + DAY)], 999, 9_990_000,
         manual="SOON"),
    Case("manual usage limit reached", [pct("LTD", "25", usage_limit=3, usage_count=3)],
         999, 9_990_000, manual="LTD"),
    # $1 off: 899 | 8_990_000
    Case("manual $1 with uses left", [off("LTD", "1", usage_limit=3, usage_count=2)],
         899, 8_990_000, manual="LTD", applied_fiat=["LTD"], applied_crypto=["LTD"]),
    Case("auto inactive", [pct("GONE", "50", **CAT, active=False)], 999, 9_990_000),
    Case("auto expired", [pct("GONE", "50", **CAT, expires_at=NOW - DAY)], 999, 9_990_000),
    # $2 = 200 cents = 2_000_000 micro-USDC
    Case("fixed $2 in usd", [off("TWO", "2", "usd", **CAT)], 799, 7_990_000,
         applied_fiat=["TWO"], applied_crypto=["TWO"]),
    Case("fixed 2 usdc (pegged, also off USD)", [off("TWO", "2", "usdc", **CAT)], 799,
         7_990_000, applied_fiat=["TWO"], applied_crypto=["TWO"]),
    # selected, but an EUR amount cannot come off a USD or USDC price
    Case("fixed 2 eur", [off("EURO", "2", "eur", **CAT)], 999, 9_990_000,
         applied_fiat=["EURO"], applied_crypto=["EURO"]),
    Case("fixed $15 more than the price", [off("BIG", "15", **CAT)], 0, 0,
         applied_fiat=["BIG"], applied_crypto=["BIG"]),
    Case("100% off", [pct("FREE", "100", **CAT)], 0, 0,
         applied_fiat=["FREE"], applied_crypto=["FREE"]),
    Case("150% ignored", [pct("WRONG", "150", **CAT)], 999, 9_990_000,
         applied_fiat=["WRONG"], applied_crypto=["WRONG"]),
    # Stripe, one step: 899.1 -> 899, - 100 = 799
    # x402: 8_991_000 then - 1_000_000 = 7_991_000 -> 8_000_000
    Case("catalog 10% then checkout $1", [pct("A10", "10", **CAT), off("B1", "1", **CHK)],
         799, 8_000_000, applied_fiat=["A10", "B1"], applied_crypto=["A10", "B1"]),
    # Stripe, one step (percent first): 899 - 100 = 799
    # x402 phases: 9_990_000 - 1_000_000 = 8_990_000; x 0.9 = 8_091_000 -> 8_100_000
    Case("catalog $1 then checkout 10%", [off("A1", "1", **CAT), pct("B10", "10", **CHK)],
         799, 8_100_000, applied_fiat=["A1", "B10"], applied_crypto=["A1", "B10"]),
    # Stripe: 999 x .9 = 899.1 -> 899; x .8 = 719.2 -> 719; - 150 = 569
    # x402 catalog: 8_991_000 - 500_000 = 8_491_000; checkout: x .8 = 6_792_800
    #   - 1_000_000 = 5_792_800 -> 5_800_000
    Case("four coupons across both phases",
         [pct("C10", "10", **CAT), off("C050", "0.50", **CAT), pct("K20", "20", **CHK),
          off("M1", "1", applies_at="checkout")],
         569, 5_800_000, manual="M1",
         applied_fiat=["C050", "C10", "K20", "M1"], applied_crypto=["C050", "C10", "K20", "M1"]),
    # 9_990_000 x 0.9 = 8_991_000 -> 9_000_000
    Case("manual x402-only coupon", [pct("CRYPTO", "10", payment_method="x402")],
         999, 9_000_000, manual="CRYPTO", applied_crypto=["CRYPTO"]),
    Case("manual duplicates an auto coupon", [pct("SAVE", "10", **CAT)], 899, 9_000_000,
         manual="SAVE", applied_fiat=["SAVE"], applied_crypto=["SAVE"]),
    # standard: 849.15 -> 849; 721.65 -> 722 | 8_491_500; 7_217_775 -> 7_220_000
    Case("two 15% standard", [pct("A", "15", **CAT), pct("B", "15", **CHK)], 722, 7_220_000,
         applied_fiat=["A", "B"], applied_crypto=["A", "B"]),
    # ceiling: 849.15 -> 850; 722.5 -> 723 | micro-USDC amounts are exact: 7_220_000
    Case("two 15% ceiling", [pct("A", "15", **CAT), pct("B", "15", **CHK)], 723, 7_220_000,
         rounding=CEIL, applied_fiat=["A", "B"], applied_crypto=["A", "B"]),
    # $0.004: 0 cents | 4_000 micro: 9_986_000 -> up to cents 9_990_000
    Case("sub-cent fixed", [off("TINY", "0.004", **CAT)], 999, 9_990_000,
         applied_fiat=["TINY"], applied_crypto=["TINY"]),
    Case("empty applies_at counts as catalog", [pct("E", "10", **{**CAT, "applies_at": ""})],
         899, 9_000_000, applied_fiat=["E"], applied_crypto=["E"]),
    # manual code typed in lower case finds SAVE10: 899 | 9_000_000
    Case("manual code in another case", [pct("SAVE10", "10")], 899, 9_000_000,
         manual="save10", applied_fiat=["SAVE10"], applied_crypto=["SAVE10"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_coupon_configurations(case: Case) -> None:
    pricing, _, _ = await _pricing(case.coupons, case.rounding)
    fiat = await pricing.fiat_price("default", EBOOK, case.manual)
    crypto = await pricing.crypto_price("default", EBOOK, case.manual)
    assert fiat is not None and crypto is not None
    assert fiat.original == usd(999) and crypto.original == usdc(9_990_000)
    assert fiat.effective == usd(case.fiat)
    assert crypto.effective == usdc(case.crypto)
    assert sorted(c.code for c in fiat.applied) == sorted(case.applied_fiat)
    assert sorted(c.code for c in crypto.applied) == sorted(case.applied_crypto)


def test_at_least_25_coupon_configurations() -> None:
    assert len(CASES) >= 25


async def test_crypto_price_reports_each_phase() -> None:
    pricing, _, _ = await _pricing(
        [pct("CAT10", "10", **CAT), pct("CHK5", "5", **CHK), off("M1", "1", applies_at="checkout")]
    )
    crypto = await pricing.crypto_price("default", EBOOK, "M1")
    assert crypto is not None
    assert [c.code for c in crypto.catalog] == ["CAT10"]
    assert [c.code for c in crypto.checkout] == ["CHK5", "M1"]
    # 8_991_000 x 0.95 = 8_541_450 - 1_000_000 = 7_541_450 -> 7_550_000
    assert crypto.effective == usdc(7_550_000)


async def test_fiat_price_splits_catalog_and_checkout_coupons() -> None:
    pricing, _, _ = await _pricing([pct("A_CHK", "5", **CHK), pct("B_CAT", "10", **CAT)])
    fiat = await pricing.fiat_price("default", EBOOK, None)
    assert fiat is not None
    assert [c.code for c in fiat.catalog] == ["B_CAT"]
    assert [c.code for c in fiat.checkout] == ["A_CHK"]
    # 999 x 0.9 = 899.1 -> 899; x 0.95 = 854.05 -> 854
    assert fiat.effective == usd(854)


async def test_crypto_price_rounds_up_to_cents_even_without_coupons() -> None:
    # spec 05: 1_840_001 (0.184001 USDC) -> 1_850_000
    pricing, _, _ = await _pricing([])
    odd = Product(id="odd", crypto_amount=1_840_001, crypto_token="USDC")
    crypto = await pricing.crypto_price("default", odd, None)
    assert crypto is not None and crypto.effective == usdc(1_850_000)


async def test_crypto_price_in_sol_rounds_to_hundredths_of_a_sol() -> None:
    pricing, _, _ = await _pricing([pct("S", "10", scope="all", auto_apply=True,
                                        applies_at="catalog")])
    sol = Product(id="sol-item", crypto_amount=123_456_789, crypto_token="SOL")
    crypto = await pricing.crypto_price("default", sol, None)
    # 123_456_789 x 0.9 = 111_111_110.1 -> 111_111_110 -> up to 0.12 SOL = 120_000_000
    assert crypto is not None and crypto.effective == Money(SOL, 120_000_000)


async def test_prices_absent_when_the_product_has_none() -> None:
    pricing, _, _ = await _pricing([pct("ALL", "10", **CHK)])
    fiat_only = Product(id="p", fiat_amount=500, fiat_currency="usd")
    crypto_only = Product(id="q", crypto_amount=5_000_000, crypto_token="USDC")
    zero = Product(id="z", fiat_amount=0, crypto_amount=0, crypto_token="USDC")
    assert await pricing.crypto_price("default", fiat_only, None) is None
    assert await pricing.catalog_crypto_unit("default", fiat_only) is None
    assert await pricing.fiat_price("default", crypto_only, None) is None
    assert await pricing.catalog_fiat_unit("default", crypto_only) is None
    assert await pricing.fiat_price("default", zero, None) is None
    assert await pricing.crypto_price("default", zero, None) is None


async def test_default_currency_and_token() -> None:
    pricing, _, _ = await _pricing([])
    bare = Product(id="bare", fiat_amount=100, crypto_amount=1_000_000)
    fiat = await pricing.fiat_price("default", bare, None)
    crypto = await pricing.crypto_price("default", bare, None)
    assert fiat is not None and fiat.effective.asset == USD
    assert crypto is not None and crypto.effective.asset == USDC


async def test_unknown_token_is_a_config_error() -> None:
    pricing, _, _ = await _pricing([])
    bad = Product(id="bad", crypto_amount=1_000_000, crypto_token="DOGE")
    with pytest.raises(CedrosError) as err:
        await pricing.crypto_price("default", bad, None)
    assert err.value.code is ErrorCode.CONFIG_ERROR


async def test_catalog_units_take_auto_catalog_coupons_only_and_do_not_round() -> None:
    pricing, _, _ = await _pricing([
        pct("CAT15", "15", **CAT), pct("CHK10", "10", **CHK), pct("MANUAL", "50"),
        pct("CARD", "20", **CAT, payment_method="stripe"),
    ])
    crypto = await pricing.catalog_crypto_unit("default", EBOOK)
    fiat = await pricing.catalog_fiat_unit("default", EBOOK)
    # 9_990_000 x 0.85 = 8_491_500 (left at micro precision)
    assert crypto is not None and crypto.effective == usdc(8_491_500)
    assert [c.code for c in crypto.catalog] == ["CAT15"] and crypto.checkout == ()
    # 999 x 0.8 = 799.2 -> 799; x 0.85 = 679.15 -> 679
    assert fiat is not None and fiat.effective == usd(679)
    assert [c.code for c in fiat.catalog] == ["CARD", "CAT15"]


async def test_checkout_total_x402_applies_site_wide_coupons_and_rounds_up() -> None:
    pricing, _, _ = await _pricing([
        pct("CHK10", "10", **CHK), pct("CAT50", "50", **CAT),
        off("SITE1", "1", applies_at="checkout"),
    ])
    priced = await pricing.checkout_total("default", usdc(8_491_500), "SITE1",
                                          PaymentMethod.X402)
    # 8_491_500 x 0.9 = 7_642_350; - 1_000_000 = 6_642_350 -> 6_650_000
    assert priced.effective == usdc(6_650_000)
    assert priced.original == usdc(8_491_500)
    assert [c.code for c in priced.checkout] == ["CHK10", "SITE1"] and priced.catalog == ()


async def test_checkout_total_ignores_a_product_specific_manual_coupon() -> None:
    pricing, _, _ = await _pricing([pct("EBOOK50", "50", scope="specific",
                                        product_ids=["ebook"])])
    priced = await pricing.checkout_total("default", usdc(9_990_000), "EBOOK50",
                                          PaymentMethod.X402)
    assert priced.effective == usdc(9_990_000) and priced.applied == ()


async def test_checkout_total_stripe_is_not_rounded_to_cents_twice() -> None:
    pricing, _, _ = await _pricing([pct("CHK15", "15", **CHK)])
    priced = await pricing.checkout_total("default", usd(999), None, PaymentMethod.STRIPE)
    assert priced.effective == usd(849)  # 849.15 -> 849, standard


async def test_one_item_cart_costs_the_same_as_the_single_quote() -> None:
    coupons = [off("A1", "1", **CAT), pct("B10", "10", **CHK), pct("C7", "7.5", **CAT)]
    pricing, _, _ = await _pricing(coupons)
    single = await pricing.crypto_price("default", EBOOK, None)
    unit = await pricing.catalog_crypto_unit("default", EBOOK)
    assert single is not None and unit is not None
    cart = await pricing.checkout_total("default", unit.effective, None, PaymentMethod.X402)
    assert cart.effective == single.effective


async def test_checkout_coupons_lists_usable_site_wide_auto_coupons_per_rail() -> None:
    pricing, _, _ = await _pricing([
        pct("ANY", "5", **CHK),
        pct("CARD", "5", **CHK, payment_method="stripe"),
        pct("CRYPTO", "5", **CHK, payment_method="x402"),
        pct("CATALOG", "5", **CAT),
        pct("EXPIRED", "5", **CHK, expires_at=NOW - DAY),
        pct("MANUAL", "5", applies_at="checkout"),
        pct("SPECIFIC", "5", **{**CHK, "scope": "specific", "product_ids": ["ebook"]}),
    ])
    stripe = await pricing.checkout_coupons("default", PaymentMethod.STRIPE)
    crypto = await pricing.checkout_coupons("default", PaymentMethod.X402)
    assert _codes(stripe) == ["ANY", "CARD"]
    assert _codes(crypto) == ["ANY", "CRYPTO"]


async def test_coupons_of_another_tenant_do_not_apply() -> None:
    pricing, _, _ = await _pricing([pct("CAT10", "10", **CAT), pct("M", "50")], tenant="acme")
    crypto = await pricing.crypto_price("default", EBOOK, "M")
    assert crypto is not None and crypto.effective == usdc(9_990_000)
    acme = await pricing.crypto_price("acme", EBOOK, "M")
    # 9_990_000 x 0.9 = 8_991_000 ; x 0.5 = 4_495_500 -> 4_500_000
    assert acme is not None and acme.effective == usdc(4_500_000)


async def test_coupon_validity_follows_the_clock() -> None:
    pricing, _, clock = await _pricing([pct("SALE", "10", **CAT, expires_at=NOW + DAY)])
    before = await pricing.crypto_price("default", EBOOK, None)
    clock.advance(DAY)
    after = await pricing.crypto_price("default", EBOOK, None)
    assert before is not None and before.effective == usdc(9_000_000)
    assert after is not None and after.effective == usdc(9_990_000)


async def test_spec_23_yaml_examples() -> None:
    summer = pct("SUMMER20", "20", scope="all", applies_at="checkout",
                 expires_at=datetime(2025, 9, 1, tzinfo=UTC))
    premium = off("PREMIUM50", "50", "usd", scope="specific", product_ids=["premium-tier"],
                  payment_method="stripe", auto_apply=True, applies_at="catalog",
                  usage_limit=100)
    pricing, _, clock = await _pricing([summer, premium])
    tier = Product(id="premium-tier", fiat_amount=10_000, fiat_currency="usd",
                   crypto_amount=100_000_000, crypto_token="USDC")
    fiat = await pricing.fiat_price("default", tier, None)
    crypto = await pricing.crypto_price("default", tier, None)
    assert fiat is not None and fiat.effective == usd(5_000)  # $100 - $50, Stripe only
    assert crypto is not None and crypto.effective == usdc(100_000_000)
    fiat = await pricing.fiat_price("default", tier, "SUMMER20")
    crypto = await pricing.crypto_price("default", tier, "SUMMER20")
    assert fiat is not None and fiat.effective == usd(3_000)  # $100 x 0.8 - $50
    assert crypto is not None and crypto.effective == usdc(80_000_000)
    assert [c.code for c in crypto.checkout] == ["SUMMER20"]
    clock.set(datetime(2025, 9, 1, tzinfo=UTC))
    crypto = await pricing.crypto_price("default", tier, "SUMMER20")
    assert crypto is not None and crypto.effective == usdc(100_000_000)


# --- Priced helpers and metadata (spec 19 "Metadata in Response") -------------------------------


def test_metadata_matches_the_spec_format() -> None:
    priced = Priced(original=usdc(1_500_000), effective=usdc(1_275_000),
                    catalog=(pct("SAVE10", "10", **CAT),),
                    checkout=(pct("CHECKOUT5", "5", **CHK),))
    assert coupon_metadata(priced) == {
        "coupon_codes": "SAVE10,CHECKOUT5",
        "catalog_coupons": "SAVE10",
        "checkout_coupons": "CHECKOUT5",
        "original_amount": "1500000",
        "discounted_amount": "1275000",
    }


def test_metadata_omits_empty_values() -> None:
    only_checkout = Priced(original=usd(1000), effective=usd(900),
                           checkout=(pct("CHK", "10", **CHK),))
    assert coupon_metadata(only_checkout) == {
        "coupon_codes": "CHK", "checkout_coupons": "CHK",
        "original_amount": "1000", "discounted_amount": "900",
    }
    assert coupon_metadata(Priced(original=usd(1000), effective=usd(1000))) == {}


async def test_metadata_of_a_real_quote() -> None:
    pricing, _, _ = await _pricing([pct("CAT10", "10", **CAT), off("CHK1", "1", **CHK)])
    crypto = await pricing.crypto_price("default", EBOOK, None)
    assert crypto is not None
    assert coupon_metadata(crypto) == {
        "coupon_codes": "CAT10,CHK1", "catalog_coupons": "CAT10", "checkout_coupons": "CHK1",
        "original_amount": "9990000", "discounted_amount": "8000000",  # 7_991_000 -> up
    }


def test_priced_discount_helpers() -> None:
    priced = Priced(original=usd(999), effective=usd(899))
    assert priced.discount == usd(100)
    assert priced.discount_percent == Decimal("10.01")  # 100 / 999 = 10.010..%
    assert Priced(original=usd(1000), effective=usd(0)).discount_percent == Decimal("100.00")
    assert Priced(original=usd(0), effective=usd(0)).discount_percent == Decimal("0.00")
