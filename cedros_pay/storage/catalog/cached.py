"""TTL caches in front of a database catalog (spec 23 "Cached Repository").

Reads are cached per tenant for a TTL (products 5m, coupons 1m by default; 0 turns the
cache off). Writes made through a cached repository invalidate that tenant's entries as
soon as they finish; writes made elsewhere (another instance, SQL by hand) show after at
most one TTL, as the spec accepts. Payment verification never depends on this staleness:
it checks against the quote, which fixed the price when it was issued.

Concurrent misses for one key share a single load (no stampede on expiry). The shared
load runs as its own task, so a caller that is cancelled while waiting does not cancel
it for the others. A load that was in flight while its tenant was invalidated still
answers the callers already waiting on it, but its result is not cached: it may predate
the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from cedros_pay.core.clock import Clock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.storage.repos import CouponRepo, ProductRepo

V = TypeVar("V")

# The spec sets no bound; one is kept anyway because tenant ids and product ids in
# lookups come from requests, and a cache must not grow with whatever clients send.
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _Entry(Generic[V]):
    expires_at: datetime
    value: V


@dataclass(slots=True)
class _Load(Generic[V]):
    task: asyncio.Task[V]
    cacheable: bool = True


class TtlCache(Generic[V]):
    """Values by (tenant, key) that expire after `ttl`, with shared in-flight loads."""

    def __init__(self, ttl: timedelta, clock: Clock,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max(1, max_entries)
        self._buckets: dict[str, dict[Hashable, _Entry[V]]] = {}
        self._size = 0
        self._loads: dict[tuple[str, Hashable], _Load[V]] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > timedelta(0)

    def __len__(self) -> int:
        return self._size

    async def get(self, tenant: str, key: Hashable,
                  load: Callable[[], Coroutine[Any, Any, V]]) -> V:
        """The cached value, or the result of `load()` (shared with concurrent callers)."""
        if not self.enabled:
            return await load()
        bucket = self._buckets.get(tenant)
        if bucket is not None and (entry := bucket.get(key)) is not None:
            if self._clock.now() < entry.expires_at:
                return entry.value
            self._drop(tenant, key)
        slot = (tenant, key)
        pending = self._loads.get(slot)
        if pending is None:
            pending = _Load(asyncio.create_task(load()))
            self._loads[slot] = pending
            # Registered before any waiter's callback, so the entry is stored before
            # the waiters resume.
            pending.task.add_done_callback(lambda task: self._finish(slot, pending))
        return await asyncio.shield(pending.task)

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget one tenant's entries (all tenants' when None); loads in flight are not
        cached when they finish."""
        if tenant is None:
            self._buckets.clear()
            self._size = 0
            slots = list(self._loads)
        else:
            self._size -= len(self._buckets.pop(tenant, {}))
            slots = [s for s in self._loads if s[0] == tenant]
        for slot in slots:
            self._loads.pop(slot).cacheable = False

    def _finish(self, slot: tuple[str, Hashable], pending: _Load[V]) -> None:
        if self._loads.get(slot) is pending:
            del self._loads[slot]
        task = pending.task
        if task.cancelled():
            return
        if task.exception() is not None:  # also marks it retrieved if nobody waited
            return
        if pending.cacheable:
            self._put(slot[0], slot[1], task.result())

    def _put(self, tenant: str, key: Hashable, value: V) -> None:
        bucket = self._buckets.setdefault(tenant, {})
        if key not in bucket:
            self._size += 1
        bucket[key] = _Entry(self._clock.now() + self._ttl, value)
        if self._size > self._max:
            self._evict()

    def _drop(self, tenant: str, key: Hashable) -> None:
        bucket = self._buckets[tenant]
        del bucket[key]
        self._size -= 1
        if not bucket:
            del self._buckets[tenant]

    def _evict(self) -> None:
        """Drop expired entries; if still too many, drop from the longest-cached tenant first."""
        now = self._clock.now()
        for tenant, bucket in list(self._buckets.items()):
            for key in [k for k, e in bucket.items() if e.expires_at <= now]:
                self._drop(tenant, key)
        while self._size > self._max:
            tenant, bucket = next(iter(self._buckets.items()))
            self._drop(tenant, next(iter(bucket)))


class CachedProducts:
    """A ProductRepo that caches `get`, `get_by_stripe_price_id` and `list` per tenant.

    Misses are cached too (a lookup of an unknown id does not reach the database again
    within the TTL); `create` invalidates them like any other write.
    """

    def __init__(self, inner: ProductRepo, ttl: timedelta, clock: Clock,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._inner = inner
        self._one: TtlCache[Product | None] = TtlCache(ttl, clock, max_entries)
        self._many: TtlCache[list[Product]] = TtlCache(ttl, clock, max_entries)

    def invalidate(self, tenant: str | None = None) -> None:
        self._one.invalidate(tenant)
        self._many.invalidate(tenant)

    async def get(self, tenant: str, product_id: str) -> Product | None:
        return await self._one.get(tenant, ("id", product_id),
                                   lambda: self._inner.get(tenant, product_id))

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        return await self._one.get(
            tenant, ("stripe_price", price_id),
            lambda: self._inner.get_by_stripe_price_id(tenant, price_id))

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        found = await self._many.get(tenant, include_inactive,
                                     lambda: self._inner.list(tenant, include_inactive))
        return list(found)  # records are frozen and shared; the list is the caller's

    # Writes invalidate even when they fail: a failure may leave the outcome unknown.

    async def create(self, product: Product) -> None:
        try:
            await self._inner.create(product)
        finally:
            self.invalidate(product.tenant_id)

    async def update(self, product: Product) -> None:
        try:
            await self._inner.update(product)
        finally:
            self.invalidate(product.tenant_id)

    async def delete(self, tenant: str, product_id: str) -> bool:
        try:
            return await self._inner.delete(tenant, product_id)
        finally:
            self.invalidate(tenant)


class CachedCoupons:
    """A CouponRepo that caches `get` and `list` per tenant.

    `increment_usage` and `release_usage` always reach the source (they are the atomic
    limit check) and then invalidate the tenant, so the next read shows the new count.
    """

    def __init__(self, inner: CouponRepo, ttl: timedelta, clock: Clock,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._inner = inner
        self._one: TtlCache[Coupon | None] = TtlCache(ttl, clock, max_entries)
        self._many: TtlCache[list[Coupon]] = TtlCache(ttl, clock, max_entries)

    def invalidate(self, tenant: str | None = None) -> None:
        self._one.invalidate(tenant)
        self._many.invalidate(tenant)

    async def get(self, tenant: str, code: str) -> Coupon | None:
        return await self._one.get(tenant, code, lambda: self._inner.get(tenant, code))

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Coupon]:
        found = await self._many.get(tenant, include_inactive,
                                     lambda: self._inner.list(tenant, include_inactive))
        return list(found)

    async def create(self, coupon: Coupon) -> None:
        try:
            await self._inner.create(coupon)
        finally:
            self.invalidate(coupon.tenant_id)

    async def update(self, coupon: Coupon) -> None:
        try:
            await self._inner.update(coupon)
        finally:
            self.invalidate(coupon.tenant_id)

    async def increment_usage(self, tenant: str, code: str) -> bool:
        try:
            return await self._inner.increment_usage(tenant, code)
        finally:
            self.invalidate(tenant)

    async def release_usage(self, tenant: str, code: str) -> bool:
        try:
            return await self._inner.release_usage(tenant, code)
        finally:
            self.invalidate(tenant)

    async def delete(self, tenant: str, code: str) -> bool:
        try:
            return await self._inner.delete(tenant, code)
        finally:
            self.invalidate(tenant)
