"""POST /coupons/validate rules: spec 04 response fields, spec 17 codes, DESIGN §7."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon
from cedros_pay.resolvers.coupon_check import CouponChecker, CouponValidation
from cedros_pay.resolvers.pricing import PaymentMethod
from cedros_pay.storage.store import memory_store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def coupon(code: str = "SAVE10", **kw: Any) -> Coupon:
    fields: dict[str, Any] = {"discount_type": "percentage", "discount_value": Decimal(10)}
    fields.update(kw)
    return Coupon(code=code, **fields)


async def check(coupons: list[Coupon], code: str, products: list[str] | None = None,
                method: PaymentMethod | None = None, tenant: str = "default",
                ) -> CouponValidation:
    store = memory_store()
    for c in coupons:
        await store.coupons.create(c)
    checker = CouponChecker(store.coupons, ManualClock(NOW))
    return await checker.validate(tenant, code, products or [], method)


async def test_valid_site_wide_percentage_coupon() -> None:
    result = await check([coupon(expires_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))],
                         "SAVE10")
    assert result == CouponValidation(
        valid=True, code="SAVE10", discount_type="percentage", discount_value=Decimal(10),
        scope="all", applicable_products=[], payment_method="",
        expires_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), remaining_uses=None,
        error="", error_code=None,
    )


async def test_valid_fixed_coupon_reports_remaining_uses() -> None:
    fixed = coupon("FIVE", discount_type="fixed", discount_value=Decimal("5.00"),
                   currency="usd", usage_limit=100, usage_count=37, payment_method="stripe")
    result = await check([fixed], "FIVE", method=PaymentMethod.STRIPE)
    assert result.valid and result.error_code is None
    assert result.discount_type == "fixed" and result.discount_value == Decimal("5.00")
    assert result.remaining_uses == 63
    assert result.payment_method == "stripe"
    assert result.expires_at is None


async def test_unknown_code_is_not_found() -> None:
    result = await check([coupon()], "NOPE")
    assert not result.valid
    assert result.error_code is ErrorCode.COUPON_NOT_FOUND
    assert result.error == "Coupon not found"
    assert result.code == "NOPE"
    assert result.discount_type == "" and result.remaining_uses is None


@pytest.mark.parametrize(("kw", "code", "message"), [
    ({"active": False}, ErrorCode.INVALID_COUPON, "Coupon is inactive"),
    ({"starts_at": NOW + DAY}, ErrorCode.INVALID_COUPON, "Coupon is not active yet"),
    ({"expires_at": NOW - DAY}, ErrorCode.COUPON_EXPIRED, "Coupon has expired"),
    ({"expires_at": NOW}, ErrorCode.COUPON_EXPIRED, "Coupon has expired"),
    ({"usage_limit": 10, "usage_count": 10}, ErrorCode.COUPON_USAGE_LIMIT_REACHED,
     "Coupon usage limit reached"),
])
async def test_unusable_coupon_is_invalid_with_its_spec_code(
    kw: dict[str, Any], code: ErrorCode, message: str
) -> None:
    result = await check([coupon(**kw)], "SAVE10")
    assert not result.valid
    assert result.error_code is code
    assert result.error == message
    # a rejected coupon does not advertise its terms
    assert result.discount_type == "" and result.discount_value == 0


async def test_wrong_payment_method() -> None:
    result = await check([coupon(payment_method="x402")], "SAVE10", method=PaymentMethod.STRIPE)
    assert not result.valid
    assert result.error_code is ErrorCode.COUPON_WRONG_PAYMENT_METHOD
    assert "payment method" in result.error


@pytest.mark.parametrize(("restriction", "method"), [
    ("", PaymentMethod.STRIPE), ("", PaymentMethod.X402), ("x402", PaymentMethod.X402),
    ("stripe", None), ("x402", None),
])
async def test_payment_method_allowed(restriction: str, method: PaymentMethod | None) -> None:
    result = await check([coupon(payment_method=restriction)], "SAVE10", method=method)
    assert result.valid


async def test_specific_coupon_lists_the_requested_products_it_covers() -> None:
    specific = coupon(scope="specific", product_ids=["ebook", "video"])
    result = await check([specific], "SAVE10", products=["video", "course", "video"])
    assert result.valid and result.applicable_products == ["video"]
    assert result.scope == "specific"


async def test_specific_coupon_not_covering_any_requested_product() -> None:
    specific = coupon(scope="specific", product_ids=["ebook"])
    result = await check([specific], "SAVE10", products=["course"])
    assert not result.valid
    assert result.error_code is ErrorCode.COUPON_NOT_APPLICABLE
    assert "products" in result.error


async def test_specific_coupon_without_requested_products_lists_its_own() -> None:
    specific = coupon(scope="specific", product_ids=["ebook", "video"])
    result = await check([specific], "SAVE10")
    assert result.valid and result.applicable_products == ["ebook", "video"]


async def test_site_wide_coupon_covers_every_requested_product() -> None:
    result = await check([coupon()], "SAVE10", products=["ebook", "", "video"])
    assert result.valid and result.applicable_products == ["ebook", "video"]


async def test_checks_run_in_order_validity_then_method_then_products() -> None:
    expired = coupon(expires_at=NOW - DAY, payment_method="x402", scope="specific",
                     product_ids=["ebook"])
    result = await check([expired], "SAVE10", products=["course"], method=PaymentMethod.STRIPE)
    assert result.error_code is ErrorCode.COUPON_EXPIRED
    live = coupon(payment_method="x402", scope="specific", product_ids=["ebook"])
    result = await check([live], "SAVE10", products=["course"], method=PaymentMethod.STRIPE)
    assert result.error_code is ErrorCode.COUPON_WRONG_PAYMENT_METHOD


async def test_code_is_trimmed_and_found_in_another_case() -> None:
    result = await check([coupon()], "  save10 ")
    assert result.valid and result.code == "SAVE10"


@pytest.mark.parametrize("code", ["", "   "])
async def test_empty_code_is_a_missing_field(code: str) -> None:
    with pytest.raises(CedrosError) as err:
        await check([coupon()], code)
    assert err.value.code is ErrorCode.MISSING_FIELD
    assert err.value.http_status == 400


async def test_absurdly_long_code_is_an_invalid_field() -> None:
    with pytest.raises(CedrosError) as err:
        await check([], "X" * 129)
    assert err.value.code is ErrorCode.INVALID_FIELD


async def test_coupon_of_another_tenant_is_not_found() -> None:
    result = await check([coupon(tenant_id="acme")], "SAVE10")
    assert result.error_code is ErrorCode.COUPON_NOT_FOUND
    result = await check([coupon(tenant_id="acme")], "SAVE10", tenant="acme")
    assert result.valid


async def test_naive_expiry_is_reported_in_utc() -> None:
    result = await check([coupon(expires_at=datetime(2025, 12, 31, 23, 59, 59))], "SAVE10")
    assert result.expires_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
