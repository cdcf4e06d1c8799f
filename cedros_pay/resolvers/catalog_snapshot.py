"""The one cache above the catalog repositories: per tenant, the catalog as of one read.

A `CatalogSnapshot` holds the records it was built from (the tenant's active products
and active coupons, as the repositories and their spec 23 TTL caches returned them) and
the span around its clock reading in which no coupon starts or expires, so that every
price in it holds throughout that span. What is derived from those records is worked
out on first use and kept with the snapshot: the priced listing (`view`), a product's
quote prices and the quote parts built from them per coupon code (`offer`), what
the adapters make of the listing (`rendered`: the REST JSON, the GraphQL nodes), and
whole answers to requests that read nothing but the listing (`answer`: a GraphQL
`products` document's response body, per document, variables and admin-ness).

Nothing in a snapshot is ever updated. `CatalogSnapshots` compares each request's read
with the current snapshot's records; when the records differ or the clock has left the
span, it builds a new snapshot and the old one goes as a whole, with everything derived
from it. Records are compared with `==`: the repositories hand out the same frozen
records while nothing changes, so that is an identity check; a repository that builds
new records on every read costs comparisons, never a stale price.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar, cast

from cedros_pay.core.bounded import BoundedMemo
from cedros_pay.core.clock import Clock
from cedros_pay.core.models import Coupon, Product
from cedros_pay.resolvers.pricing import (
    CouponView,
    PaymentMethod,
    Priced,
    Pricing,
    validity_window,
)
from cedros_pay.storage.repos import CouponRepo, ProductRepo

T = TypeVar("T")

TENANTS_LIMIT = 1024  # snapshots kept; tenant ids come from requests
OFFERS_LIMIT = 4096  # per snapshot: offers are keyed by client-chosen coupon codes
# Per snapshot: answers are keyed by client-chosen documents, so both their count and
# their size are bounded (a dashboard repeats a few documents; a larger answer is remade).
ANSWERS_LIMIT = 64
ANSWER_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product with its catalog-phase prices on each rail (what GET /products shows)."""

    product: Product
    fiat: Priced | None
    crypto: Priced | None


@dataclass(frozen=True, slots=True)
class CatalogView:
    """A tenant's priced catalog: the active products and the auto-apply checkout
    coupons of each rail. Shared by every request a snapshot serves, so immutable."""

    products: tuple[ProductView, ...]
    checkout_stripe_coupons: tuple[Coupon, ...]
    checkout_crypto_coupons: tuple[Coupon, ...]


OfferBuilder = Callable[[Product, Priced | None, Priced | None], T]


class CatalogSnapshot:
    """One tenant's catalog as of one read (module docstring). Read-only to callers."""

    __slots__ = ("_answers", "_by_code", "_by_id", "_coupon_view", "_offers", "_pricing",
                 "_rendered", "_view", "_views_by_id", "coupons", "now", "products", "since",
                 "tenant", "until")

    def __init__(self, tenant: str, products: Sequence[Product], coupons: Sequence[Coupon],
                 now: datetime, pricing: Pricing) -> None:
        self.tenant = tenant
        self.products = tuple(products)
        self.coupons = tuple(coupons)
        self.now = now
        self.since, self.until = validity_window(self.coupons, now)
        self._pricing = pricing
        self._by_id = {p.id: p for p in self.products}
        self._by_code = {c.code: c for c in self.coupons}
        self._coupon_view = CouponView(tuple([c for c in self.coupons if c.auto_apply]), now)
        self._view: CatalogView | None = None
        self._views_by_id: dict[str, ProductView] = {}
        self._offers: BoundedMemo[tuple[object, str, str],
                                  tuple[Coupon | None, object]] = BoundedMemo(OFFERS_LIMIT)
        self._rendered: dict[object, object] = {}
        self._answers: BoundedMemo[Hashable, bytes] = BoundedMemo(ANSWERS_LIMIT)

    def holds(self, now: datetime) -> bool:
        """No coupon starts or expires between this snapshot's clock reading and `now`."""
        return self.since <= now < self.until

    def product(self, product_id: str) -> Product | None:
        """The active product with this id, as the snapshot was built from it."""
        return self._by_id.get(product_id)

    @property
    def view(self) -> CatalogView:
        """The priced listing: catalog-phase prices of every product, then the checkout
        coupons (spec 04 GET /products)."""
        return self._view if self._view is not None else self._price_listing()

    def product_view(self, product_id: str) -> ProductView | None:
        """One product of `view`, or None when the snapshot has no such active product."""
        if self._view is None:
            self._price_listing()
        return self._views_by_id.get(product_id)

    def _price_listing(self) -> CatalogView:
        pricing, v = self._pricing, self._coupon_view
        view = self._view = CatalogView(
            products=tuple([
                ProductView(product=p,
                            fiat=pricing.catalog_unit_with(p, PaymentMethod.STRIPE, v),
                            crypto=pricing.catalog_unit_with(p, PaymentMethod.X402, v))
                for p in self.products]),
            checkout_stripe_coupons=tuple(pricing.checkout_coupons_with(PaymentMethod.STRIPE, v)),
            checkout_crypto_coupons=tuple(pricing.checkout_coupons_with(PaymentMethod.X402, v)))
        self._views_by_id = {pv.product.id: pv for pv in view.products}
        return view

    def offer(self, product: Product, code: str, manual: Coupon | None, now: datetime,
              build: OfferBuilder[T]) -> T:
        """`build(product, fiat, crypto)` for the product's quote prices with the coupon
        the customer typed as `code` (`manual`, as the coupon repository found it; None if
        none), made once per product and code.

        `product` must be the snapshot's record (`CatalogSnapshots.for_product` hands out
        a snapshot that holds it) and `now` a time the snapshot holds. The result is kept
        while `manual` stays the record it was made from. An active manual coupon the
        snapshot does not hold as it is (read between two cache refreshes) is priced at
        `now` every time: its start and expiry are not in the snapshot's span.
        """
        if manual is not None and manual.active:
            held = self._by_code.get(manual.code)
            if held is not manual and held != manual:
                return self._build(product, manual, CouponView(self._coupon_view.auto, now),
                                   build)
        key = (build, product.id, code)
        hit = self._offers.get(key)
        if hit is not None and (hit[0] is manual or hit[0] == manual):
            return cast(T, hit[1])  # the key holds `build`, which made this value
        made = self._build(product, manual, self._coupon_view, build)
        return cast(T, self._offers.put(key, (manual, made))[1])

    def _build(self, product: Product, manual: Coupon | None, v: CouponView,
               build: OfferBuilder[T]) -> T:
        return build(product, self._pricing.fiat_with(product, manual, v),
                     self._pricing.crypto_with(product, manual, v))

    def rendered(self, render: Callable[[CatalogView], T]) -> T:
        """`render(view)`, made once per snapshot: what an adapter shows of the listing
        (its JSON body, its GraphQL nodes) is shared by every request the snapshot
        serves. `render` must depend on the view alone."""
        found = self._rendered.get(render)
        if found is None:
            found = self._rendered[render] = render(self.view)
        return cast(T, found)


    def answer(self, key: Hashable) -> bytes | None:
        """The answer kept under `key` by `keep_answer`, if any."""
        return self._answers.get(key)

    def keep_answer(self, key: Hashable, body: bytes) -> bytes:
        """Keep `body` (unless it is over `ANSWER_MAX_BYTES`) as the answer to the
        request `key` names. The caller vouches that the answer depends on this snapshot
        alone, and that `key` holds everything else it was made from (the document, its
        variables, the caller's admin-ness): the answer goes with the snapshot, when the
        catalog changes or a coupon starts or ends."""
        return self._answers.put(key, body) if len(body) <= ANSWER_MAX_BYTES else body


class CatalogSnapshots:
    """Each tenant's current snapshot: built once by the composition root and shared by
    the catalog (listings) and quotes (offers)."""

    def __init__(self, products: ProductRepo, coupons: CouponRepo, pricing: Pricing,
                 clock: Clock, *, tenants: int = TENANTS_LIMIT) -> None:
        self._products = products
        self._coupons = coupons
        self._pricing = pricing
        self._clock = clock
        self._current: BoundedMemo[str, CatalogSnapshot] = BoundedMemo(tenants)

    def _replace(self, tenant: str, products: Sequence[Product],
                 coupons: Sequence[Coupon], now: datetime) -> CatalogSnapshot:
        return self._current.put(
            tenant, CatalogSnapshot(tenant, products, coupons, now, self._pricing))

    async def listing(self, tenant: str) -> CatalogSnapshot:
        """The snapshot to list the catalog from, checked against a read of both
        repositories."""
        products = await self._products.list(tenant)
        coupons = await self._coupons.list(tenant)
        now = self._clock.now()
        snap = self._current.get(tenant)
        if (snap is not None and snap.holds(now) and snap.coupons == tuple(coupons)
                and snap.products == tuple(products)):
            return snap
        return self._replace(tenant, products, coupons, now)

    async def for_product(self, tenant: str, product: Product,
                          ) -> tuple[CatalogSnapshot, datetime]:
        """A snapshot holding `product` (the active record the caller has just read) and
        this request's clock reading.

        Only the coupons are read to check the current snapshot: listing every product
        for every quote would cost a large catalog dearly. A record the snapshot does not
        hold as it is means the catalog changed: the snapshot is rebuilt from a fresh
        listing. If the listing does not hold it either (the product and listing caches
        expire at different times), the product is priced in a snapshot of its own, which
        is not kept, and the current one stays.
        """
        coupons = await self._coupons.list(tenant)
        now = self._clock.now()
        snap = self._current.get(tenant)
        if snap is None or not snap.holds(now) or snap.coupons != tuple(coupons):
            snap = self._replace(tenant, await self._products.list(tenant), coupons, now)
        held = snap.product(product.id)
        if held is product or held == product:
            return snap, now
        listed = await self._products.list(tenant)
        if snap.products != tuple(listed):
            snap = self._replace(tenant, listed, coupons, now)
            held = snap.product(product.id)
            if held is product or held == product:
                return snap, now
        return CatalogSnapshot(tenant, [product], coupons, now, self._pricing), now
