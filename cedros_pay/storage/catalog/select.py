"""Which repositories serve products and coupons (spec 23 factories, spec 09 sources).

`paywall.product_source` / `coupons.coupon_source` follow `storage.backend` unless set:
the config fills them in (postgres -> postgres, mongodb -> mongodb, anything else ->
yaml, as the reference's "unified storage" does). Then:

- `yaml`: the config file, read-only (`YamlProducts` / `YamlCoupons`); on a memory
  store, the store's repositories seeded with the file's entries instead, so admin
  writes work there (nothing is persisted on that backend anyway).
- `sqlite` / `postgres`: the store's own tables, behind the TTL caches. The catalog must
  live in the storage database: a catalog URL or table name that differs from storage's
  is refused rather than silently ignored.
- `disabled` (coupons only): no coupons.
- `mongodb`: refused; this build has no MongoDB backend.

In-process sources (yaml, memory, disabled) are not cached: a cache over a dict saves
nothing and there is no other writer whose changes could be stale.

YAML entries are never copied into a database source at startup: spec 23 keeps the two
apart, and seeding would resurrect products an admin deleted or repriced. Moving a file
catalog into a database is an explicit, one-off step: `import_yaml_catalog`.
"""

from __future__ import annotations

from dataclasses import replace

from cedros_pay.config.models import Config, StorageConfig
from cedros_pay.core.clock import Clock
from cedros_pay.storage.catalog.cached import CachedCoupons, CachedProducts
from cedros_pay.storage.catalog.disabled import DisabledCoupons
from cedros_pay.storage.catalog.errors import UnsupportedSource
from cedros_pay.storage.catalog.yaml_source import (
    SeededCoupons,
    SeededProducts,
    YamlCoupons,
    YamlProducts,
    coupons_from_config,
    products_from_config,
)
from cedros_pay.storage.repos import AlreadyExists, CouponRepo, ProductRepo
from cedros_pay.storage.store import Store

_DATABASE_SOURCES = ("sqlite", "postgres")


def catalog_repos(config: Config, store: Store, clock: Clock) -> tuple[ProductRepo, CouponRepo]:
    """The product and coupon repositories the configuration selects.

    Raises `UnsupportedSource` for a source this build or store cannot serve.
    """
    return product_repo(config, store, clock), coupon_repo(config, store, clock)


def product_repo(config: Config, store: Store, clock: Clock) -> ProductRepo:
    paywall = config.paywall
    source = paywall.product_source
    if source == "yaml":
        yaml = YamlProducts(products_from_config(paywall.resources, config.x402))
        return SeededProducts(store.products, yaml) if store.backend == "memory" else yaml
    _check_database_source("paywall.product_source", source, config.storage,
                           url=("paywall.postgres_url", paywall.postgres_url),
                           table=("paywall.postgres_table_name", paywall.postgres_table_name),
                           table_key="products")
    return CachedProducts(store.products, paywall.product_cache_ttl, clock)


def coupon_repo(config: Config, store: Store, clock: Clock) -> CouponRepo:
    coupons = config.coupons
    source = coupons.coupon_source
    if source == "disabled":
        return DisabledCoupons()
    if source == "yaml":
        yaml = YamlCoupons(coupons_from_config(coupons.coupons))
        return SeededCoupons(store.coupons, yaml) if store.backend == "memory" else yaml
    _check_database_source("coupons.coupon_source", source, config.storage,
                           url=("coupons.postgres_url", coupons.postgres_url),
                           table=("coupons.postgres_table_name", coupons.postgres_table_name),
                           table_key="coupons")
    return CachedCoupons(store.coupons, coupons.cache_ttl, clock)


def coupons_in_store(config: Config) -> bool:
    """Whether `coupon_repo` serves the store's own coupon table (a database source), so a
    unit of work may count uses there (`UnitOfWork.coupons`)."""
    return config.coupons.coupon_source in _DATABASE_SOURCES


def _check_database_source(label: str, source: str, storage: StorageConfig, *,
                           url: tuple[str, str], table: tuple[str, str],
                           table_key: str) -> None:
    """The catalog can only live in the store's database (one engine, one migration)."""
    if source not in _DATABASE_SOURCES:
        raise UnsupportedSource(
            f"{label} {source!r} is not available in this build; "
            "use yaml, sqlite or postgres")
    if source != storage.backend:
        raise UnsupportedSource(
            f"{label} {source!r} needs storage.backend {source!r} (the catalog is kept in "
            f"the storage database), but storage.backend is {storage.backend!r}")
    if source != "postgres":
        return
    url_key, url_value = url
    if url_value.strip() and url_value.strip() != storage.postgres_url.strip():
        raise UnsupportedSource(
            f"{url_key} differs from storage.postgres_url; a separate catalog database is "
            f"not supported: leave {url_key} empty")
    table_name_key, table_name = table
    expected = storage.schema_mapping.table_name(table_key)
    if table_name != expected:
        raise UnsupportedSource(
            f"{table_name_key} {table_name!r} differs from "
            f"storage.schema_mapping.{table_key}.table_name {expected!r}; set the name "
            "in storage.schema_mapping only")


async def import_yaml_catalog(config: Config, products: ProductRepo, coupons: CouponRepo,
                              tenant: str) -> tuple[int, int]:
    """Copy the file's products and coupons into `tenant`, skipping ids already there.

    An explicit migration step (never run at startup); returns (products, coupons) added.
    """
    added_products = added_coupons = 0
    for product in products_from_config(config.paywall.resources, config.x402):
        product = replace(product, tenant_id=tenant)
        try:
            await products.create(product)
            added_products += 1
        except AlreadyExists:
            pass
    for coupon in coupons_from_config(config.coupons.coupons):
        coupon = replace(coupon, tenant_id=tenant)
        try:
            await coupons.create(coupon)
            added_coupons += 1
        except AlreadyExists:
            pass
    return added_products, added_coupons
