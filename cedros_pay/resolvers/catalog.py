"""The product catalog with effective prices, and its admin writes (spec 04, spec 23)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon, Product
from cedros_pay.resolvers.pricing import (
    CouponView,
    PaymentMethod,
    Priced,
    Pricing,
    same_records,
    validity_window,
)
from cedros_pay.storage.repos import (
    AlreadyExists,
    CouponRepo,
    NotFound,
    ProductRepo,
    StorageError,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product with its catalog-phase prices on each rail (what GET /products shows)."""

    product: Product
    fiat: Priced | None
    crypto: Priced | None


@dataclass(frozen=True, slots=True)
class CatalogView:
    """A tenant's priced catalog. Shared between requests while nothing it was computed
    from changes (`Catalog.list`), so it is immutable all the way down."""

    products: tuple[ProductView, ...]
    checkout_stripe_coupons: tuple[Coupon, ...]
    checkout_crypto_coupons: tuple[Coupon, ...]


@dataclass(frozen=True, slots=True)
class _Page:
    """A catalog view and what it was computed from: the product records (frozen, so
    identity says they did not change), the auto-apply coupons, and the span around the
    computation in which no coupon starts or expires."""

    products: tuple[Product, ...]
    auto: tuple[Coupon, ...]
    since: datetime
    until: datetime
    view: CatalogView


_PAGES_LIMIT = 1024  # tenants


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
    def __init__(self, products: ProductRepo, coupons: CouponRepo, pricing: Pricing,
                 clock: Clock) -> None:
        self._products = products
        self._coupons = coupons
        self._pricing = pricing
        self._clock = clock
        self._pages: dict[str, _Page] = {}

    async def _view(self, tenant: str, product: Product,
                    coupons: CouponView | None = None) -> ProductView:
        coupons = coupons or await self._pricing.view(tenant)
        fiat = await self._pricing.catalog_fiat_unit(tenant, product, coupons)
        crypto = await self._pricing.catalog_crypto_unit(tenant, product, coupons)
        return ProductView(product=product, fiat=fiat, crypto=crypto)

    async def list(self, tenant: str) -> CatalogView:
        """Active products with auto-applied catalog coupons, plus the checkout coupons.

        One coupon read prices the whole page; nothing here waits on I/O after it.
        """
        products, coupons = await asyncio.gather(self._products.list(tenant),
                                                 self._pricing.view(tenant))
        # GET /products is read far more often than the catalog changes: the last view
        # is reused while the same records price it at a time no coupon edge separates.
        page = self._pages.get(tenant)
        if (page is not None and page.auto is coupons.auto
                and page.since <= coupons.now < page.until
                and same_records(page.products, products)):
            return page.view
        views = tuple([await self._view(tenant, p, coupons) for p in products])
        stripe = await self._pricing.checkout_coupons(tenant, PaymentMethod.STRIPE, coupons)
        crypto = await self._pricing.checkout_coupons(tenant, PaymentMethod.X402, coupons)
        view = CatalogView(products=views, checkout_stripe_coupons=tuple(stripe),
                           checkout_crypto_coupons=tuple(crypto))
        since, until = validity_window(coupons.auto, coupons.now)
        if len(self._pages) >= _PAGES_LIMIT:
            self._pages.clear()
        self._pages[tenant] = _Page(tuple(products), coupons.auto, since, until, view)
        return view

    async def get(self, tenant: str, product_id: str) -> ProductView:
        product = await self._products.get(tenant, product_id)
        if product is None or not product.active:
            raise CedrosError(ErrorCode.PRODUCT_NOT_FOUND, f"product {product_id!r} not found",
                              {"productId": product_id})
        return await self._view(tenant, product)

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
