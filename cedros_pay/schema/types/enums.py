"""Enums for the coupon and payment vocabulary; values are the spec's lowercase strings."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="How a customer pays: Stripe (card) or x402 (Solana).")
class PaymentMethod(Enum):
    STRIPE = "stripe"
    X402 = "x402"


@strawberry.enum
class DiscountType(Enum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"


@strawberry.enum(description="ALL products, or only the coupon's SPECIFIC product ids.")
class CouponScope(Enum):
    ALL = "all"
    SPECIFIC = "specific"


@strawberry.enum(description="CATALOG coupons discount a product's shown price; CHECKOUT "
                             "coupons the total.")
class AppliesAt(Enum):
    CATALOG = "catalog"
    CHECKOUT = "checkout"


@strawberry.enum
class BillingPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
