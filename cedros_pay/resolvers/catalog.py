"""The product catalog with effective prices, and its admin writes (spec 04, spec 23)."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon, Product
from cedros_pay.resolvers.catalog_snapshot import (
    CatalogSnapshot,
    CatalogSnapshots,
    CatalogView,
    ProductView,
)
from cedros_pay.storage.repos import (
    AlreadyExists,
    CouponRepo,
    NotFound,
    ProductRepo,
    StorageError,
)

__all__ = ["Catalog", "CatalogView", "ProductView"]

T = TypeVar("T")


async def _write(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Storage outcomes of an admin write, in spec codes."""
    try:
        return await action()
    except AlreadyExists as exc:
        raise CedrosError(ErrorCode.INVALID_FIELD, f"{what} already exists") from exc
    except NotFound as exc:
        code = ErrorCode.COUPON_NOT_FOUND if what.startswith("coupon") else \
            ErrorCode.PRODUCT_NOT_FOUND
        raise CedrosError(code, f"{what} not found") from exc
    except StorageError as exc:  # e.g. the YAML source is read-only
        raise CedrosError(ErrorCode.CONFIG_ERROR, str(exc)) from exc


class Catalog:
    """Listings and product lookups from the tenant's catalog snapshot, and the admin
    writes (whose effect the next read's snapshot check picks up)."""

    def __init__(self, products: ProductRepo, coupons: CouponRepo, snapshots: CatalogSnapshots,
                 clock: Clock) -> None:
        self._products = products
        self._coupons = coupons
        self._snapshots = snapshots
        self._clock = clock

    async def snapshot(self, tenant: str) -> CatalogSnapshot:
        """The tenant's current snapshot, for adapters that render its listing."""
        return await self._snapshots.listing(tenant)

    async def list(self, tenant: str) -> CatalogView:
        """Active products with auto-applied catalog coupons, plus the checkout coupons."""
        return (await self._snapshots.listing(tenant)).view

    async def get(self, tenant: str, product_id: str) -> ProductView:
        product = await self._products.get(tenant, product_id)
        view = None
        if product is not None and product.active:
            snapshot, _ = await self._snapshots.for_product(tenant, product)
            view = snapshot.product_view(product.id)  # it holds the product
        if view is None:
            raise CedrosError(ErrorCode.PRODUCT_NOT_FOUND, f"product {product_id!r} not found",
                              {"productId": product_id})
        return view

    # Admin writes (GraphQL); validation of the input happens in the adapter's input types.

    async def create_product(self, product: Product) -> Product:
        now = self._clock.now()
        product = replace(product, created_at=now, updated_at=now)
        await _write(lambda: self._products.create(product), f"product {product.id!r}")
        return product

    async def update_product(self, product: Product) -> Product:
        product = replace(product, updated_at=self._clock.now())
        await _write(lambda: self._products.update(product), f"product {product.id!r}")
        return product

    async def delete_product(self, tenant: str, product_id: str) -> bool:
        """Soft delete (spec 23): the product stops being sold but stays on record."""
        if not await _write(lambda: self._products.delete(tenant, product_id),
                            f"product {product_id!r}"):
            raise CedrosError(ErrorCode.PRODUCT_NOT_FOUND, f"product {product_id!r} not found")
        return True

    async def list_coupons(self, tenant: str,
                           include_inactive: bool = False) -> builtins.list[Coupon]:
        return await self._coupons.list(tenant, include_inactive)

    async def create_coupon(self, coupon: Coupon) -> Coupon:
        now = self._clock.now()
        coupon = replace(coupon, created_at=now, updated_at=now)
        await _write(lambda: self._coupons.create(coupon), f"coupon {coupon.code!r}")
        return coupon

    async def update_coupon(self, coupon: Coupon) -> Coupon:
        coupon = replace(coupon, updated_at=self._clock.now())
        await _write(lambda: self._coupons.update(coupon), f"coupon {coupon.code!r}")
        return coupon

    async def delete_coupon(self, tenant: str, code: str) -> bool:
        if not await _write(lambda: self._coupons.delete(tenant, code), f"coupon {code!r}"):
            raise CedrosError(ErrorCode.COUPON_NOT_FOUND, f"coupon {code!r} not found")
        return True
