"""Products and coupons in memory (spec 23)."""

from __future__ import annotations

import copy
from dataclasses import replace

from cedros_pay.core.models import Coupon, Product
from cedros_pay.storage.repos import AlreadyExists, NotFound


class MemoryProducts:
    def __init__(self, products: list[Product] | None = None) -> None:
        self._rows: dict[tuple[str, str], Product] = {
            (p.tenant_id, p.id): copy.deepcopy(p) for p in products or []
        }

    async def get(self, tenant: str, product_id: str) -> Product | None:
        return copy.deepcopy(self._rows.get((tenant, product_id)))

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        for (t, _), p in sorted(self._rows.items()):
            if t == tenant and price_id and p.stripe_price_id == price_id:
                return copy.deepcopy(p)
        return None

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        return [copy.deepcopy(p) for (t, _), p in sorted(self._rows.items())
                if t == tenant and (include_inactive or p.active)]

    async def create(self, product: Product) -> None:
        key = (product.tenant_id, product.id)
        if key in self._rows:
            raise AlreadyExists(f"product {product.id!r} exists")
        self._rows[key] = copy.deepcopy(product)

    async def update(self, product: Product) -> None:
        key = (product.tenant_id, product.id)
        if key not in self._rows:
            raise NotFound(f"product {product.id!r} not found")
        self._rows[key] = replace(copy.deepcopy(product), created_at=self._rows[key].created_at)

    async def delete(self, tenant: str, product_id: str) -> bool:
        p = self._rows.get((tenant, product_id))
        if p is None:
            return False
        p.active = False
        return True


class MemoryCoupons:
    def __init__(self, coupons: list[Coupon] | None = None) -> None:
        self._rows: dict[tuple[str, str], Coupon] = {
            (c.tenant_id, c.code): copy.deepcopy(c) for c in coupons or []
        }

    async def get(self, tenant: str, code: str) -> Coupon | None:
        return copy.deepcopy(self._rows.get((tenant, code)))

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        return [copy.deepcopy(c) for (t, _), c in sorted(self._rows.items())
                if t == tenant and (include_inactive or c.active)]

    async def create(self, coupon: Coupon) -> None:
        key = (coupon.tenant_id, coupon.code)
        if key in self._rows:
            raise AlreadyExists(f"coupon {coupon.code!r} exists")
        self._rows[key] = copy.deepcopy(coupon)

    async def update(self, coupon: Coupon) -> None:
        key = (coupon.tenant_id, coupon.code)
        if key not in self._rows:
            raise NotFound(f"coupon {coupon.code!r} not found")
        old = self._rows[key]  # usage_count moves only through increment_usage
        self._rows[key] = replace(copy.deepcopy(coupon), created_at=old.created_at,
                                  usage_count=old.usage_count)

    async def increment_usage(self, tenant: str, code: str) -> bool:
        c = self._rows.get((tenant, code))
        if c is None or (c.usage_limit is not None and c.usage_count >= c.usage_limit):
            return False
        c.usage_count += 1
        return True

    async def delete(self, tenant: str, code: str) -> bool:
        c = self._rows.get((tenant, code))
        if c is None:
            return False
        c.active = False
        return True
