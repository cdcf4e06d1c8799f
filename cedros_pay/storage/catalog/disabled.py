"""The coupon source for `coupons.coupon_source: disabled` (spec 23 "Disabled Repository")."""

from __future__ import annotations

from cedros_pay.core.models import Coupon
from cedros_pay.storage.catalog.errors import ReadOnlySource

_DISABLED = (
    "coupons are disabled (coupons.coupon_source is 'disabled'); choose yaml, sqlite or "
    "postgres to use them"
)


class DisabledCoupons:
    """No coupons at all: every lookup misses, so prices are never discounted.

    Writes raise `ReadOnlySource` rather than pretending to succeed: an admin who creates
    a coupon here should learn that it will never apply.
    """

    async def get(self, tenant: str, code: str) -> Coupon | None:
        return None

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        return []

    async def increment_usage(self, tenant: str, code: str) -> bool:
        return False

    async def release_usage(self, tenant: str, code: str) -> bool:
        return False

    async def create(self, coupon: Coupon) -> None:
        raise ReadOnlySource(_DISABLED)

    async def update(self, coupon: Coupon) -> None:
        raise ReadOnlySource(_DISABLED)

    async def delete(self, tenant: str, code: str) -> bool:
        raise ReadOnlySource(_DISABLED)
