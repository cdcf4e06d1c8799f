"""Cheap private copies of catalog records.

Sources and caches hand out records that callers may mutate (the admin resolvers stamp
timestamps on them); a copy keeps the shared original intact. Only the mutable parts are
copied: Decimal, datetime and str are immutable. Much cheaper than `copy.deepcopy` on
the hot path of `GET /products`.
"""

from __future__ import annotations

import copy

from cedros_pay.core.models import Coupon, Product

# `copy.copy` then fresh containers: `dataclasses.replace` re-runs __init__ and cost 7%
# of a quote's time.


def copy_product(product: Product, tenant: str | None = None) -> Product:
    """A copy, optionally re-homed in `tenant`."""
    out = copy.copy(product)
    if tenant is not None:
        out.tenant_id = tenant
    out.metadata = dict(product.metadata)
    if product.subscription is not None:
        out.subscription = copy.copy(product.subscription)
    return out


def copy_coupon(coupon: Coupon, tenant: str | None = None) -> Coupon:
    """A copy, optionally re-homed in `tenant`."""
    out = copy.copy(coupon)
    if tenant is not None:
        out.tenant_id = tenant
    out.product_ids = list(coupon.product_ids)
    out.metadata = dict(coupon.metadata)
    return out
