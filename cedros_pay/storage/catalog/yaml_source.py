"""Products and coupons defined in the YAML config (spec 23 "YAML Repository").

The file is the source of truth, so these repositories are read-only: a write raises
`ReadOnlySource` instead of changing something that the next restart would undo. The
file knows no tenants; every tenant sees the same catalog, each record stamped with the
tenant that asked. The one exception to "read-only" is a coupon's usage count, which
checkout must be able to advance: like the reference, it is counted in this process's
memory only (lost on restart, not shared between instances), on top of the file's
`usage_count`. Use a database source when usage limits must hold across instances.

`SeededProducts` / `SeededCoupons` serve the memory backend: a writable repository that
starts with the YAML entries, so admin writes work there while nothing is persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from cedros_pay.config.models import (
    CouponConfig,
    ResourceConfig,
    ResourceSubscriptionConfig,
    X402Config,
)
from cedros_pay.config.tokens import stablecoin_for_mint
from cedros_pay.core.models import Coupon, Product, SubscriptionConfig
from cedros_pay.storage.catalog.errors import ReadOnlySource
from cedros_pay.storage.repos import AlreadyExists, CouponRepo, ProductRepo

T = TypeVar("T")

_PRODUCTS_READ_ONLY = (
    "products come from the config file (paywall.product_source is 'yaml') and are "
    "read-only here; edit paywall.resources, or use a database source (sqlite, postgres) "
    "to manage products through the API"
)
_COUPONS_READ_ONLY = (
    "coupons come from the config file (coupons.coupon_source is 'yaml') and are "
    "read-only here; edit coupons.coupons, or use a database source (sqlite, postgres) "
    "to manage coupons through the API"
)


# --- config -> domain ------------------------------------------------------------------


def default_token_symbol(x402: X402Config) -> str:
    """The symbol of x402.token_mint: what a resource without `crypto_token` is priced in.

    An unknown mint (only possible with validation off) falls back to the first allowed
    token rather than leaving the price without an asset.
    """
    coin = stablecoin_for_mint(x402.token_mint, x402.network)
    if coin is not None:
        return coin.symbol
    return x402.allowed_tokens[0] if x402.allowed_tokens else ""


def _subscription(sub: ResourceSubscriptionConfig | None) -> SubscriptionConfig | None:
    if sub is None:
        return None
    return SubscriptionConfig(
        billing_period=sub.billing_period, billing_interval=sub.billing_interval,
        trial_days=sub.trial_days, stripe_price_id=sub.stripe_price_id,
        allow_x402=sub.allow_x402, grace_period_hours=sub.grace_period_hours,
    )


def product_from_config(resource: ResourceConfig, default_token: str) -> Product:
    """A YAML resource as a Product; an amount of 0 means "no price on that rail"."""
    return Product(
        id=resource.resource_id,
        description=resource.description,
        fiat_amount=resource.fiat_amount_cents or None,
        fiat_currency=resource.fiat_currency,
        stripe_price_id=resource.stripe_price_id,
        crypto_amount=resource.crypto_atomic_amount or None,
        crypto_token=resource.crypto_token.strip().upper() or default_token,
        crypto_account=resource.crypto_account,
        memo_template=resource.memo_template,
        metadata=dict(resource.metadata),
        active=resource.active,
        subscription=_subscription(resource.subscription),
    )


def coupon_from_config(coupon: CouponConfig) -> Coupon:
    """A YAML coupon; the float from YAML goes through str so 0.1 stays one tenth."""
    return Coupon(
        code=coupon.code,
        discount_type=coupon.discount_type,
        discount_value=Decimal(str(coupon.discount_value)),
        currency=coupon.currency,
        scope=coupon.scope,
        product_ids=list(coupon.product_ids),
        payment_method=coupon.payment_method,
        auto_apply=coupon.auto_apply,
        applies_at=coupon.applies_at,
        usage_limit=coupon.usage_limit,
        usage_count=coupon.usage_count,
        starts_at=coupon.starts_at,
        expires_at=coupon.expires_at,
        active=coupon.active,
        metadata=dict(coupon.metadata),
    )


def products_from_config(
    resources: Mapping[str, ResourceConfig], x402: X402Config
) -> list[Product]:
    """Every `paywall.resources` entry, in file order."""
    token = default_token_symbol(x402)
    return [product_from_config(r, token) for r in resources.values()]


def coupons_from_config(coupons: Mapping[str, CouponConfig]) -> list[Coupon]:
    """Every `coupons.coupons` entry, in file order."""
    return [coupon_from_config(c) for c in coupons.values()]


# --- read-only sources -----------------------------------------------------------------


def _product_in(product: Product, tenant: str) -> Product:
    return product if product.tenant_id == tenant else replace(product, tenant_id=tenant)


def _coupon_in(coupon: Coupon, tenant: str) -> Coupon:
    return coupon if coupon.tenant_id == tenant else replace(coupon, tenant_id=tenant)


class YamlProducts:
    """ProductRepo over a fixed list; same catalog for every tenant, writes refused.

    The file's records are handed out as they are to the tenant they name (the default
    one) and stamped with the asking tenant otherwise.
    """

    def __init__(self, products: Iterable[Product]) -> None:
        self._by_id = {p.id: p for p in products}  # keeps file order

    async def get(self, tenant: str, product_id: str) -> Product | None:
        found = self._by_id.get(product_id)
        return None if found is None else _product_in(found, tenant)

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        if not price_id:
            return None
        for p in self._by_id.values():
            if p.stripe_price_id == price_id:
                return _product_in(p, tenant)
        return None

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        return [_product_in(p, tenant) for p in self._by_id.values()
                if include_inactive or p.active]

    async def create(self, product: Product) -> None:
        raise ReadOnlySource(_PRODUCTS_READ_ONLY)

    async def update(self, product: Product) -> None:
        raise ReadOnlySource(_PRODUCTS_READ_ONLY)

    async def delete(self, tenant: str, product_id: str) -> bool:
        raise ReadOnlySource(_PRODUCTS_READ_ONLY)


class YamlCoupons:
    """CouponRepo over a fixed list; writes refused except usage counting (in memory).

    A coupon used in this process is kept per tenant as the record with its new count
    (the file's usage_count plus the uses counted here); the others are the file's.
    """

    def __init__(self, coupons: Iterable[Coupon]) -> None:
        self._by_code = {c.code: c for c in coupons}  # keeps file order
        self._counted: dict[tuple[str, str], Coupon] = {}  # (tenant, code) -> record

    def _in(self, tenant: str, coupon: Coupon) -> Coupon:
        counted = self._counted.get((tenant, coupon.code))
        return counted if counted is not None else _coupon_in(coupon, tenant)

    async def get(self, tenant: str, code: str) -> Coupon | None:
        found = self._by_code.get(code)
        return None if found is None else self._in(tenant, found)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        return [self._in(tenant, c) for c in self._by_code.values()
                if include_inactive or c.active]

    async def increment_usage(self, tenant: str, code: str) -> bool:
        """Count one use in this process; atomic because nothing here awaits."""
        found = self._by_code.get(code)
        if found is None:
            return False
        current = self._in(tenant, found)
        if current.usage_limit is not None and current.usage_count >= current.usage_limit:
            return False
        self._counted[(tenant, code)] = replace(current, tenant_id=tenant,
                                                usage_count=current.usage_count + 1)
        return True

    async def release_usage(self, tenant: str, code: str) -> bool:
        """Give back a use counted here (never one the file counted); atomic likewise."""
        found = self._by_code.get(code)
        current = self._counted.get((tenant, code))
        if found is None or current is None or current.usage_count <= found.usage_count:
            return False
        if current.usage_count - 1 == found.usage_count:
            del self._counted[(tenant, code)]
        else:
            self._counted[(tenant, code)] = replace(current, usage_count=current.usage_count - 1)
        return True

    async def create(self, coupon: Coupon) -> None:
        raise ReadOnlySource(_COUPONS_READ_ONLY)

    async def update(self, coupon: Coupon) -> None:
        raise ReadOnlySource(_COUPONS_READ_ONLY)

    async def delete(self, tenant: str, code: str) -> bool:
        raise ReadOnlySource(_COUPONS_READ_ONLY)


# --- writable, seeded from YAML (memory backend) ---------------------------------------


class _Seeder:
    """Gives each tenant its copy of the YAML entries the first time it is used.

    Lazy and per tenant because the file serves every tenant and the repositories'
    writes are async (they cannot run while the app is being wired).
    """

    def __init__(self, seed_tenant: Callable[[str], Awaitable[None]]) -> None:
        self._seed_tenant = seed_tenant
        self._done: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, tenant: str) -> None:
        if tenant in self._done:
            return
        async with self._lock:
            if tenant not in self._done:
                await self._seed_tenant(tenant)
                self._done.add(tenant)


async def _create_missing(create: Callable[[T], Awaitable[None]], records: Iterable[T]) -> None:
    for record in records:
        # An id taken already was created through the API before the tenant's first read.
        with contextlib.suppress(AlreadyExists):
            await create(record)


class SeededProducts:
    """A writable ProductRepo whose tenants start with the YAML products."""

    def __init__(self, inner: ProductRepo, seed: YamlProducts) -> None:
        self._inner = inner

        async def seed_tenant(tenant: str) -> None:
            await _create_missing(inner.create, await seed.list(tenant, include_inactive=True))

        self._seeder = _Seeder(seed_tenant)

    async def get(self, tenant: str, product_id: str) -> Product | None:
        await self._seeder.ensure(tenant)
        return await self._inner.get(tenant, product_id)

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        await self._seeder.ensure(tenant)
        return await self._inner.get_by_stripe_price_id(tenant, price_id)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        await self._seeder.ensure(tenant)
        return await self._inner.list(tenant, include_inactive)

    async def create(self, product: Product) -> None:
        await self._seeder.ensure(product.tenant_id)
        await self._inner.create(product)

    async def update(self, product: Product) -> None:
        await self._seeder.ensure(product.tenant_id)
        await self._inner.update(product)

    async def delete(self, tenant: str, product_id: str) -> bool:
        await self._seeder.ensure(tenant)
        return await self._inner.delete(tenant, product_id)


class SeededCoupons:
    """A writable CouponRepo whose tenants start with the YAML coupons."""

    def __init__(self, inner: CouponRepo, seed: YamlCoupons) -> None:
        self._inner = inner

        async def seed_tenant(tenant: str) -> None:
            await _create_missing(inner.create, await seed.list(tenant, include_inactive=True))

        self._seeder = _Seeder(seed_tenant)

    async def get(self, tenant: str, code: str) -> Coupon | None:
        await self._seeder.ensure(tenant)
        return await self._inner.get(tenant, code)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        await self._seeder.ensure(tenant)
        return await self._inner.list(tenant, include_inactive)

    async def create(self, coupon: Coupon) -> None:
        await self._seeder.ensure(coupon.tenant_id)
        await self._inner.create(coupon)

    async def update(self, coupon: Coupon) -> None:
        await self._seeder.ensure(coupon.tenant_id)
        await self._inner.update(coupon)

    async def increment_usage(self, tenant: str, code: str) -> bool:
        await self._seeder.ensure(tenant)
        return await self._inner.increment_usage(tenant, code)

    async def release_usage(self, tenant: str, code: str) -> bool:
        await self._seeder.ensure(tenant)
        return await self._inner.release_usage(tenant, code)

    async def delete(self, tenant: str, code: str) -> bool:
        await self._seeder.ensure(tenant)
        return await self._inner.delete(tenant, code)
