"""Products and coupons in memory (spec 23).

Records are frozen, so reads hand out the stored instance itself; every change stores a
new record. The containers of a written record are copied once, at the write, so a caller
that keeps its own dict or list cannot change what is stored.
"""

from __future__ import annotations

from dataclasses import replace

from cedros_pay.core.models import Coupon, Product
from cedros_pay.storage.repos import AlreadyExists, NotFound


def _own_product(product: Product) -> Product:
    return replace(product, metadata=dict(product.metadata))


def _own_coupon(coupon: Coupon) -> Coupon:
    return replace(coupon, metadata=dict(coupon.metadata), product_ids=list(coupon.product_ids))


class MemoryProducts:
    def __init__(self, products: list[Product] | None = None) -> None:
        self._rows: dict[tuple[str, str], Product] = {
            (p.tenant_id, p.id): _own_product(p) for p in products or []
        }

    async def get(self, tenant: str, product_id: str) -> Product | None:
        return self._rows.get((tenant, product_id))

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        for (t, _), p in sorted(self._rows.items()):
            if t == tenant and price_id and p.stripe_price_id == price_id:
                return p
        return None

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        return [p for (t, _), p in sorted(self._rows.items())
                if t == tenant and (include_inactive or p.active)]

    async def create(self, product: Product) -> None:
        key = (product.tenant_id, product.id)
        if key in self._rows:
            raise AlreadyExists(f"product {product.id!r} exists")
        self._rows[key] = _own_product(product)

    async def update(self, product: Product) -> None:
        key = (product.tenant_id, product.id)
        if key not in self._rows:
            raise NotFound(f"product {product.id!r} not found")
        self._rows[key] = replace(_own_product(product), created_at=self._rows[key].created_at)

    async def delete(self, tenant: str, product_id: str) -> bool:
        p = self._rows.get((tenant, product_id))
        if p is None:
            return False
        self._rows[(tenant, product_id)] = replace(p, active=False)
        return True


class MemoryCoupons:
    def __init__(self, coupons: list[Coupon] | None = None) -> None:
        self._rows: dict[tuple[str, str], Coupon] = {
            (c.tenant_id, c.code): _own_coupon(c) for c in coupons or []
        }

    async def get(self, tenant: str, code: str) -> Coupon | None:
        return self._rows.get((tenant, code))

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        return [c for (t, _), c in sorted(self._rows.items())
                if t == tenant and (include_inactive or c.active)]

    async def create(self, coupon: Coupon) -> None:
        key = (coupon.tenant_id, coupon.code)
        if key in self._rows:
            raise AlreadyExists(f"coupon {coupon.code!r} exists")
        self._rows[key] = _own_coupon(coupon)

    async def update(self, coupon: Coupon) -> None:
        key = (coupon.tenant_id, coupon.code)
        if key not in self._rows:
            raise NotFound(f"coupon {coupon.code!r} not found")
        old = self._rows[key]  # usage_count moves only through increment_usage
        self._rows[key] = replace(_own_coupon(coupon), created_at=old.created_at,
                                  usage_count=old.usage_count)

    async def increment_usage(self, tenant: str, code: str) -> bool:
        c = self._rows.get((tenant, code))
        if c is None or (c.usage_limit is not None and c.usage_count >= c.usage_limit):
            return False
        self._adjust(tenant, code, 1)
        return True

    async def release_usage(self, tenant: str, code: str) -> bool:
        c = self._rows.get((tenant, code))
        if c is None or c.usage_count <= 0:
            return False
        self._adjust(tenant, code, -1)
        return True

    async def adjust_usage(self, tenant: str, code: str, delta: int) -> None:
        """Move the count unconditionally (a unit-of-work rollback)."""
        self._adjust(tenant, code, delta)

    def _adjust(self, tenant: str, code: str, delta: int) -> None:
        if (c := self._rows.get((tenant, code))) is not None:
            self._rows[(tenant, code)] = replace(c, usage_count=max(0, c.usage_count + delta))

    async def delete(self, tenant: str, code: str) -> bool:
        c = self._rows.get((tenant, code))
        if c is None:
            return False
        self._rows[(tenant, code)] = replace(c, active=False)
        return True
