"""POST /coupons/validate: can this code be used, and what does it give (spec 04, spec 17).

A coupon that cannot be used is an answer, not a failure (DESIGN §7): `valid` is false,
`error` says why in words and `error_code` carries the spec code. Only a request without a
code is an error (400), because there is nothing to validate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cedros_pay.core.clock import Clock, as_utc
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon
from cedros_pay.resolvers.pricing import (
    SCOPE_ALL,
    PaymentMethod,
    applies_to_method,
    applies_to_product,
    coupon_problem,
    find_coupon,
)
from cedros_pay.storage.repos import CouponRepo

MAX_CODE_LENGTH = 128

_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.COUPON_NOT_FOUND: "Coupon not found",
    ErrorCode.COUPON_EXPIRED: "Coupon has expired",
    ErrorCode.COUPON_USAGE_LIMIT_REACHED: "Coupon usage limit reached",
    ErrorCode.COUPON_WRONG_PAYMENT_METHOD: "Coupon does not apply to the selected payment method",
    ErrorCode.COUPON_NOT_APPLICABLE: "Coupon does not apply to the selected products",
}


@dataclass(frozen=True, slots=True)
class CouponValidation:
    """The answer to a validation request (spec 04 response fields, plus `error_code`)."""

    valid: bool
    code: str
    discount_type: str = ""
    discount_value: Decimal = Decimal(0)
    scope: str = ""
    applicable_products: list[str] = field(default_factory=list)
    payment_method: str = ""
    expires_at: datetime | None = None
    remaining_uses: int | None = None
    error: str = ""
    error_code: ErrorCode | None = None


def _problem_message(coupon: Coupon, code: ErrorCode, now: datetime) -> str:
    if code is ErrorCode.INVALID_COUPON:
        if not coupon.active:
            return "Coupon is inactive"
        if coupon.starts_at is not None and now < as_utc(coupon.starts_at):
            return "Coupon is not active yet"
        return "Coupon is not valid"
    return _MESSAGES[code]


def _rejected(code: str, error: ErrorCode, message: str) -> CouponValidation:
    return CouponValidation(valid=False, code=code, error=message, error_code=error)


class CouponChecker:
    def __init__(self, coupons: CouponRepo, clock: Clock) -> None:
        self._coupons = coupons
        self._clock = clock

    async def validate(
        self,
        tenant: str,
        code: str,
        product_ids: Sequence[str],
        method: PaymentMethod | None,
    ) -> CouponValidation:
        """Check a coupon code for the given products and payment method (spec 04, 17).

        In order: the code must exist (`coupon_not_found`); the coupon must be usable now
        (inactive or not started `invalid_coupon`, `coupon_expired`,
        `coupon_usage_limit_reached`); it must allow `method` when one is given
        (`coupon_wrong_payment_method`); and when products are given it must cover at least
        one of them (`coupon_not_applicable`) — `applicable_products` then lists those it
        covers. Without products, a scope-specific coupon lists its own product ids and a
        site-wide one lists none. An empty code raises `missing_field`.
        """
        wanted = code.strip()
        if not wanted:
            raise CedrosError(ErrorCode.MISSING_FIELD, "code is required", {"field": "code"})
        if len(wanted) > MAX_CODE_LENGTH:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"code must be at most {MAX_CODE_LENGTH} characters",
                              {"field": "code"})
        coupon = await find_coupon(self._coupons, tenant, wanted)
        if coupon is None:
            return _rejected(wanted, ErrorCode.COUPON_NOT_FOUND,
                             _MESSAGES[ErrorCode.COUPON_NOT_FOUND])
        now = self._clock.now()
        problem = coupon_problem(coupon, now)
        if problem is not None:
            return _rejected(coupon.code, problem, _problem_message(coupon, problem, now))
        if method is not None and not applies_to_method(coupon, method):
            return _rejected(coupon.code, ErrorCode.COUPON_WRONG_PAYMENT_METHOD,
                             _MESSAGES[ErrorCode.COUPON_WRONG_PAYMENT_METHOD])
        requested = list(dict.fromkeys(p.strip() for p in product_ids if p.strip()))
        if requested:
            applicable = [p for p in requested if applies_to_product(coupon, p)]
            if not applicable:
                return _rejected(coupon.code, ErrorCode.COUPON_NOT_APPLICABLE,
                                 _MESSAGES[ErrorCode.COUPON_NOT_APPLICABLE])
        elif coupon.scope.strip().lower() == SCOPE_ALL:
            applicable = []
        else:
            applicable = list(coupon.product_ids)
        remaining = None
        if coupon.usage_limit is not None:
            remaining = max(0, coupon.usage_limit - coupon.usage_count)
        return CouponValidation(
            valid=True,
            code=coupon.code,
            discount_type=coupon.discount_type,
            discount_value=coupon.discount_value,
            scope=coupon.scope,
            applicable_products=applicable,
            payment_method=coupon.payment_method,
            expires_at=as_utc(coupon.expires_at) if coupon.expires_at is not None else None,
            remaining_uses=remaining,
        )
