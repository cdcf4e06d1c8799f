"""The pricing engine: which coupons apply, and what they do to a price (spec 19, spec 23).

Everything here is integer money. A price is a `Money`; a coupon's Decimal value becomes
atomic units exactly, with no float in between. The rules:

* validity (spec 17 "Coupon Validation", spec 23 `IsValid`): active, started, not expired,
  usage limit not reached;
* applicability (spec 23): scope `all` or the product listed; payment method empty or equal;
* phases (spec 19 `SelectCouponsForPayment`): ALL for Stripe's single step, CATALOG for
  product-level prices, CHECKOUT (applies at checkout *and* scope all) for order totals;
* stacking (spec 19 `StackCouponsOnMoney`): percentages multiply in order, then the fixed
  discounts are summed and subtracted once, floored at zero;
* crypto totals are rounded up to whole cents at the end (spec 05 `RoundUpToCents`).

`Pricing` is the one class that reads coupons; REST, GraphQL, quotes and carts all price
through it, so every surface shows the amount that verification will demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import NamedTuple

from cedros_pay.core.assets import Asset, find_asset
from cedros_pay.core.clock import Clock, as_utc
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon, Product
from cedros_pay.core.money import Money, RoundingMode
from cedros_pay.storage.repos import CouponRepo

DEFAULT_FIAT_CURRENCY = "usd"
DEFAULT_CRYPTO_TOKEN = "USDC"  # spec 09's default x402 token

PERCENTAGE = "percentage"
FIXED = "fixed"
SCOPE_ALL = "all"
APPLIES_AT_CATALOG = "catalog"
APPLIES_AT_CHECKOUT = "checkout"
_MAX_FIXED = Decimal(10**19)


class PaymentMethod(StrEnum):
    """The rail a price is for (spec 23 coupon `payment_method`)."""

    STRIPE = "stripe"
    X402 = "x402"


class CouponPhase(StrEnum):
    """Which coupons a pricing step takes (spec 19 ScopeAll / ScopeCatalog / ScopeCheckout)."""

    ALL = "all"  # no applies_at filter: Stripe prices everything in one step
    CATALOG = "catalog"  # applies_at = catalog: product-level prices
    CHECKOUT = "checkout"  # applies_at = checkout and scope = all: order totals


# --- coupon rules ----------------------------------------------------------------------------


def _norm(text: str) -> str:
    return text.strip().lower()


def _applies_at(coupon: Coupon) -> str:
    # An empty applies_at counts as catalog, as the reference's catalog listing treats it.
    return _norm(coupon.applies_at) or APPLIES_AT_CATALOG


def coupon_problem(coupon: Coupon, now: datetime) -> ErrorCode | None:
    """Why the coupon cannot be used at `now`, or None (spec 17 "Coupon Validation").

    Checked in spec 23's order: inactive and not yet started are `invalid_coupon`;
    expired (now ≥ expires_at: spec 17's "must be < expiry" wins over spec 23's ≤) is
    `coupon_expired`; usage_count ≥ usage_limit is `coupon_usage_limit_reached`.
    """
    if not coupon.active:
        return ErrorCode.INVALID_COUPON
    if coupon.starts_at is not None and now < as_utc(coupon.starts_at):
        return ErrorCode.INVALID_COUPON
    if coupon.expires_at is not None and now >= as_utc(coupon.expires_at):
        return ErrorCode.COUPON_EXPIRED
    if coupon.usage_limit is not None and coupon.usage_count >= coupon.usage_limit:
        return ErrorCode.COUPON_USAGE_LIMIT_REACHED
    return None


def applies_to_product(coupon: Coupon, product_id: str | None) -> bool:
    """Scope `all` covers every product (and an order total, `product_id` None); any other
    scope covers only the listed product ids (spec 23 `AppliesToProduct`)."""
    if _norm(coupon.scope) == SCOPE_ALL:
        return True
    return product_id is not None and product_id in coupon.product_ids


def applies_to_method(coupon: Coupon, method: PaymentMethod) -> bool:
    """An empty payment_method means both rails (spec 23 `AppliesToPaymentMethod`)."""
    wanted = _norm(coupon.payment_method)
    return wanted == "" or wanted == method.value


def coupon_applies(coupon: Coupon, product_id: str | None, method: PaymentMethod) -> bool:
    """Scope / product ids and payment method both allow this purchase (spec 23)."""
    return applies_to_product(coupon, product_id) and applies_to_method(coupon, method)


def in_phase(coupon: Coupon, phase: CouponPhase) -> bool:
    """The spec 19 scope filter of a selection step."""
    if phase is CouponPhase.ALL:
        return True
    if phase is CouponPhase.CATALOG:
        return _applies_at(coupon) == APPLIES_AT_CATALOG
    return _applies_at(coupon) == APPLIES_AT_CHECKOUT and _norm(coupon.scope) == SCOPE_ALL


def select_coupons(
    auto: Sequence[Coupon],
    manual: Coupon | None,
    *,
    product_id: str | None,
    method: PaymentMethod,
    phase: CouponPhase,
    now: datetime,
) -> list[Coupon]:
    """The coupons one pricing step applies (spec 19 `SelectCouponsForPayment`, spec 23).

    Auto-apply coupons first in repository order (entries of `auto` without `auto_apply`
    are ignored), then the manual coupon; each must be valid at `now`, apply to the product
    and payment method, and pass the phase filter. A code appears once. A manual coupon
    that fails any check is dropped silently: quotes ignore bad coupons (spec 19 step 3).
    """
    chosen: list[Coupon] = []
    seen: set[str] = set()
    candidates = [c for c in auto if c.auto_apply]
    if manual is not None:
        candidates.append(manual)
    for coupon in candidates:
        if coupon.code in seen:
            continue
        if coupon_problem(coupon, now) is not None:
            continue
        if not coupon_applies(coupon, product_id, method) or not in_phase(coupon, phase):
            continue
        seen.add(coupon.code)
        chosen.append(coupon)
    return chosen


# --- stacking --------------------------------------------------------------------------------


def _finite(value: Decimal) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def fixed_discount_atomic(coupon: Coupon, asset: Asset) -> int | None:
    """A fixed coupon's value in `asset`'s atomic units, or None when it cannot apply.

    The coupon's currency must be the price's, or both USD-pegged (spec 05: USD, USDC,
    USDT, PYUSD and CASH are 1:1). An empty currency means dollars, so it applies to any
    USD-pegged price and to nothing else. Sub-atomic fractions are dropped, so the
    merchant is never short; a negative or unknown-currency discount is skipped (spec 19).
    """
    value = coupon.discount_value
    if not _finite(value) or value < 0:
        return None
    code = coupon.currency.strip()
    if code:
        currency = find_asset(code)
        if currency is None or not currency.is_usd_equivalent(asset):
            return None
    elif not asset.usd_pegged:
        return None
    # Anything beyond int64 atomic units takes the whole price anyway; capping first keeps
    # an absurd configured value from overflowing the Decimal context.
    return math.floor(min(value, _MAX_FIXED).scaleb(asset.decimals))


def stack_coupons(price: Money, coupons: Sequence[Coupon], rounding: RoundingMode) -> Money:
    """Apply coupons to a price (spec 19 `StackCouponsOnMoney`).

    Percentage discounts first, multiplicatively in the given order, each rounded to an
    atomic unit by `rounding`; a percentage outside 0..100 is ignored and 100 makes the
    price free. Then every applicable fixed discount is summed and subtracted once, the
    result floored at zero. Coupons of an unknown discount type are skipped.
    Example: $10.00 with [10%, 20%, $1, $0.50] -> $9.00 -> $7.20 -> $5.70.
    """
    result = price
    fixed_total = 0
    for coupon in coupons:
        kind = _norm(coupon.discount_type)
        if kind == PERCENTAGE:
            percent = coupon.discount_value
            if _finite(percent) and 0 <= percent <= 100:
                result = result.apply_percentage_discount(percent, rounding)
        elif kind == FIXED:
            off = fixed_discount_atomic(coupon, price.asset)
            if off is not None:
                fixed_total += off
    if fixed_total:
        result = Money(result.asset, max(0, result.atomic - fixed_total))
    return result


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Priced:
    """A price before and after coupons, with the coupons of each phase that were applied."""

    original: Money
    effective: Money
    catalog: tuple[Coupon, ...] = ()
    checkout: tuple[Coupon, ...] = ()

    @property
    def applied(self) -> tuple[Coupon, ...]:
        """Every applied coupon: catalog-level first, then checkout-level."""
        return self.catalog + self.checkout

    @property
    def discount(self) -> Money:
        """How much the coupons took off (in the original's asset)."""
        return Money(self.original.asset, self.original.atomic - self.effective.atomic)

    @property
    def discount_percent(self) -> Decimal:
        """The discount as a percentage of the original, to 2 places half-up (0 for a free
        original) — GET /products `stripeDiscountPercent` / `cryptoDiscountPercent`."""
        if self.original.atomic <= 0:
            return Decimal("0.00")
        ratio = Decimal(self.original.atomic - self.effective.atomic) * 100
        return (ratio / self.original.atomic).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _join(coupons: Iterable[Coupon]) -> str:
    return ",".join(dict.fromkeys(c.code for c in coupons))


def coupon_metadata(priced: Priced) -> dict[str, str]:
    """Spec 19 "Metadata in Response": snake_case keys, string values, codes comma-joined
    without spaces, amounts in atomic units, empty values omitted. Without any applied
    coupon there is nothing to report, so the map is empty."""
    if not priced.applied:
        return {}
    fields = {
        "coupon_codes": _join(priced.applied),
        "catalog_coupons": _join(priced.catalog),
        "checkout_coupons": _join(priced.checkout),
        "original_amount": str(priced.original.atomic),
        "discounted_amount": str(priced.effective.atomic),
    }
    return {key: value for key, value in fields.items() if value}


# --- the engine ------------------------------------------------------------------------------


def _asset(code: str, what: str, product: Product) -> Asset:
    asset = find_asset(code)
    if asset is None:
        raise CedrosError(
            ErrorCode.CONFIG_ERROR,
            f"product {product.id!r} has an unknown {what} {code!r}",
            {"productId": product.id, what: code},
        )
    return asset


def fiat_money(product: Product) -> Money | None:
    """The product's Stripe price, or None when it has none (amount absent or ≤ 0)."""
    if product.fiat_amount is None or product.fiat_amount <= 0:
        return None
    asset = _asset(product.fiat_currency or DEFAULT_FIAT_CURRENCY, "fiatCurrency", product)
    return Money(asset, product.fiat_amount)


def crypto_money(product: Product) -> Money | None:
    """The product's x402 price, or None when it has none (amount absent or ≤ 0)."""
    if product.crypto_amount is None or product.crypto_amount <= 0:
        return None
    asset = _asset(product.crypto_token or DEFAULT_CRYPTO_TOKEN, "cryptoToken", product)
    return Money(asset, product.crypto_amount)


async def find_coupon(coupons: CouponRepo, tenant: str, code: str) -> Coupon | None:
    """A coupon by the code a customer typed: exact first, then upper-cased (codes are
    conventionally upper case, customers type them in any case)."""
    code = code.strip()
    if not code:
        return None
    found = await coupons.get(tenant, code)
    if found is None and code.upper() != code:
        found = await coupons.get(tenant, code.upper())
    return found


class CouponView(NamedTuple):
    """One read of a tenant's auto-apply coupons and one clock reading, shared by every
    price computed for a request: a catalog page prices N products from one read."""

    auto: tuple[Coupon, ...]
    now: datetime


_MIN_TIME = datetime.min.replace(tzinfo=UTC)
_MAX_TIME = datetime.max.replace(tzinfo=UTC)


def validity_window(coupons: Iterable[Coupon], now: datetime) -> tuple[datetime, datetime]:
    """The span around `now` in which no coupon starts or expires: whatever the coupons
    do to a price at `now`, they do throughout it."""
    since, until = _MIN_TIME, _MAX_TIME
    for c in coupons:
        for edge in (c.starts_at, c.expires_at):
            if edge is None:
                continue
            edge = as_utc(edge)
            if edge <= now:
                since = max(since, edge)
            else:
                until = min(until, edge)
    return since, until


class Pricing:
    """Prices products and order totals with the tenant's coupons (spec 19).

    The async methods read what they need: the auto-apply coupons and the clock (a
    `CouponView`, unless the caller passes one) and the manual coupon by its code. The
    `*_with` methods are the computations themselves, for a caller that holds the
    coupons already (the catalog snapshot); they read nothing.
    """

    def __init__(self, coupons: CouponRepo, clock: Clock, rounding: RoundingMode) -> None:
        self._coupons = coupons
        self._clock = clock
        self.rounding = rounding

    async def view(self, tenant: str) -> CouponView:
        auto = tuple([c for c in await self._coupons.list(tenant) if c.auto_apply])
        return CouponView(auto, self._clock.now())

    async def _auto(self, tenant: str, view: CouponView | None) -> CouponView:
        return view if view is not None else await self.view(tenant)

    async def manual(self, tenant: str, code: str | None) -> Coupon | None:
        """The coupon a customer typed, as `find_coupon` finds it; None without a code."""
        return await find_coupon(self._coupons, tenant, code) if code else None

    async def fiat_price(
        self, tenant: str, product: Product, manual_code: str | None,
        view: CouponView | None = None,
    ) -> Priced | None:
        """The Stripe price: every applicable coupon, catalog and checkout alike, auto-apply
        plus the manual one, stacked in one step with the rounding mode (spec 19 step 4,
        ScopeAll). None when the product has no fiat price."""
        v = await self._auto(tenant, view)
        return self.fiat_with(product, await self.manual(tenant, manual_code), v)

    def fiat_with(self, product: Product, manual: Coupon | None,
                  v: CouponView) -> Priced | None:
        """`fiat_price` with the manual coupon and the view in hand."""
        # The single stack takes the catalog-level coupons before the checkout-level ones
        # (each in selection order), which is the order `Priced.applied` reports.
        price = fiat_money(product)
        if price is None:
            return None
        selected = select_coupons(
            v.auto, manual, product_id=product.id, method=PaymentMethod.STRIPE,
            phase=CouponPhase.ALL, now=v.now,
        )
        checkout = tuple(c for c in selected if _applies_at(c) == APPLIES_AT_CHECKOUT)
        catalog = tuple(c for c in selected if _applies_at(c) != APPLIES_AT_CHECKOUT)
        effective = stack_coupons(price, catalog + checkout, self.rounding)
        return Priced(original=price, effective=effective, catalog=catalog, checkout=checkout)

    async def crypto_price(
        self, tenant: str, product: Product, manual_code: str | None,
        view: CouponView | None = None,
    ) -> Priced | None:
        """The x402 price of one product (spec 19 step 5): phase 1 stacks the catalog
        coupons on the product price, phase 2 stacks the checkout coupons on that, and the
        result is rounded up to whole cents. The manual coupon joins the phase whose filter
        it passes. None when the product has no crypto price."""
        v = await self._auto(tenant, view)
        return self.crypto_with(product, await self.manual(tenant, manual_code), v)

    def crypto_with(self, product: Product, manual: Coupon | None,
                    v: CouponView) -> Priced | None:
        """`crypto_price` with the manual coupon and the view in hand."""
        # The phases run one after the other, exactly as for a one-item cart, so a product
        # costs the same bought alone or in a cart of one.
        price = crypto_money(product)
        if price is None:
            return None
        auto, now = v.auto, v.now
        catalog = select_coupons(auto, manual, product_id=product.id, method=PaymentMethod.X402,
                                 phase=CouponPhase.CATALOG, now=now)
        codes = {c.code for c in catalog}
        checkout = [
            c for c in select_coupons(auto, manual, product_id=None, method=PaymentMethod.X402,
                                      phase=CouponPhase.CHECKOUT, now=now)
            if c.code not in codes
        ]
        unit = stack_coupons(price, catalog, self.rounding)
        effective = stack_coupons(unit, checkout, self.rounding).round_up_to_cents()
        return Priced(original=price, effective=effective, catalog=tuple(catalog),
                      checkout=tuple(checkout))

    def catalog_unit_with(self, product: Product, method: PaymentMethod,
                          v: CouponView) -> Priced | None:
        """One unit's price on `method` after auto-apply catalog coupons only (see
        `catalog_crypto_unit` and `catalog_fiat_unit`)."""
        price = crypto_money(product) if method is PaymentMethod.X402 else fiat_money(product)
        if price is None:
            return None
        catalog = select_coupons(v.auto, None, product_id=product.id,
                                 method=method, phase=CouponPhase.CATALOG, now=v.now)
        effective = stack_coupons(price, catalog, self.rounding)
        return Priced(original=price, effective=effective, catalog=tuple(catalog))

    async def catalog_crypto_unit(self, tenant: str, product: Product,
                                  view: CouponView | None = None) -> Priced | None:
        """One unit's x402 price after auto-apply catalog coupons only: GET /products'
        `effectiveCryptoAmount` and a cart line's unit price (spec 19 GenerateCartQuote
        step 1). Not rounded to cents: only a cart's final total is (step 3)."""
        return self.catalog_unit_with(product, PaymentMethod.X402,
                                      await self._auto(tenant, view))

    async def catalog_fiat_unit(self, tenant: str, product: Product,
                                view: CouponView | None = None) -> Priced | None:
        """One unit's Stripe price after auto-apply catalog coupons only: GET /products'
        `effectiveFiatAmount` (spec 04)."""
        return self.catalog_unit_with(product, PaymentMethod.STRIPE,
                                      await self._auto(tenant, view))

    async def checkout_total(
        self, tenant: str, total: Money, manual_code: str | None, method: PaymentMethod,
        view: CouponView | None = None,
    ) -> Priced:
        """An order total after checkout coupons: auto-apply site-wide ones plus the manual
        one if it is site-wide (spec 19 GenerateCartQuote step 2, ScopeCheckout); an x402
        total is then rounded up to whole cents (step 3). A manual coupon that does not
        qualify is ignored, as in quotes."""
        v = await self._auto(tenant, view)
        checkout = select_coupons(
            v.auto, await self.manual(tenant, manual_code),
            product_id=None, method=method, phase=CouponPhase.CHECKOUT, now=v.now,
        )
        effective = stack_coupons(total, checkout, self.rounding)
        if method is PaymentMethod.X402:
            effective = effective.round_up_to_cents()
        return Priced(original=total, effective=effective, checkout=tuple(checkout))

    def checkout_coupons_with(self, method: PaymentMethod, v: CouponView) -> list[Coupon]:
        """`checkout_coupons` with the view in hand."""
        return select_coupons(v.auto, None, product_id=None, method=method,
                              phase=CouponPhase.CHECKOUT, now=v.now)

    async def checkout_coupons(self, tenant: str, method: PaymentMethod,
                               view: CouponView | None = None) -> list[Coupon]:
        """The auto-apply checkout coupons usable now on `method`: GET /products'
        `checkoutStripeCoupons` / `checkoutCryptoCoupons` (spec 04)."""
        return self.checkout_coupons_with(method, await self._auto(tenant, view))
