"""Where products and coupons come from: the YAML file, the store's database, or
nowhere (disabled coupons), with TTL caches in front of a database (spec 23).

    products, coupons = catalog_repos(config, store, clock)   # composition root only
"""

from cedros_pay.storage.catalog.cached import CachedCoupons, CachedProducts, TtlCache
from cedros_pay.storage.catalog.disabled import DisabledCoupons
from cedros_pay.storage.catalog.errors import ReadOnlySource, UnsupportedSource
from cedros_pay.storage.catalog.select import (
    catalog_repos,
    coupon_repo,
    import_yaml_catalog,
    product_repo,
)
from cedros_pay.storage.catalog.yaml_source import (
    SeededCoupons,
    SeededProducts,
    YamlCoupons,
    YamlProducts,
    coupon_from_config,
    coupons_from_config,
    default_token_symbol,
    product_from_config,
    products_from_config,
)

__all__ = [
    "CachedCoupons",
    "CachedProducts",
    "DisabledCoupons",
    "ReadOnlySource",
    "SeededCoupons",
    "SeededProducts",
    "TtlCache",
    "UnsupportedSource",
    "YamlCoupons",
    "YamlProducts",
    "catalog_repos",
    "coupon_from_config",
    "coupon_repo",
    "coupons_from_config",
    "default_token_symbol",
    "import_yaml_catalog",
    "product_from_config",
    "product_repo",
    "products_from_config",
]
