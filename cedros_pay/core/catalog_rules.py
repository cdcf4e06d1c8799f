"""What makes a product or a coupon valid, whoever writes it.

The YAML catalog (`config/validate.py`) and the GraphQL admin inputs (`schema/inputs.py`)
both ask here, so one cannot accept what the other refuses. A problem names the domain
field it is about (snake_case); each caller spells that field its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

MAX_PERCENTAGE = 100


class Problem(NamedTuple):
    field: str  # discount_value, product_ids, expires_at, ...
    message: str


def has_price(fiat_amount: int | None, crypto_amount: int | None,
              stripe_price_id: str) -> bool:
    """A product is sold for a card price, a crypto price, or a Stripe price id."""
    return bool(fiat_amount or crypto_amount or stripe_price_id)


def coupon_problems(*, discount_type: str, discount_value: Decimal | float, scope: str,
                    product_ids: Sequence[str], starts_at: datetime | None,
                    expires_at: datetime | None) -> list[Problem]:
    """The rules of a coupon (spec 17); `discount_type` and `scope` in lower case."""
    out: list[Problem] = []
    if discount_type == "percentage" and not 0 < discount_value <= MAX_PERCENTAGE:
        out.append(Problem("discount_value", "a percentage must be above 0 and at most "
                                             f"{MAX_PERCENTAGE}, got {discount_value:g}"))
    if discount_type == "fixed" and not discount_value > 0:
        out.append(Problem("discount_value",
                           f"a fixed discount must be above 0, got {discount_value:g}"))
    if scope == "specific" and not product_ids:
        out.append(Problem("product_ids", "required when scope is 'specific'"))
    if starts_at and expires_at and starts_at >= expires_at:
        out.append(Problem("expires_at", "must be after starts_at"))
    return out
