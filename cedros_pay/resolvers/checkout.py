"""Card payments: Stripe Checkout sessions for one product or a cart, and their
verification (specs 02, 19, 21).

The price is ours, never the client's: the product's fiat price after catalog and checkout
coupons for payment method `stripe` (spec 19 stacking, integer cents). A manual coupon that
cannot be used is refused with its spec code *before* anything is sent to Stripe, so a
refusal creates nothing there. A session is saved locally only after Stripe created it;
the payment itself is recorded from the verified webhook (resolvers/stripe_events.py),
and verification answers from that record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from cedros_pay.core.assets import get_asset
from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_cart_id
from cedros_pay.core.models import (
    STRIPE_SIGNATURE_PREFIX,
    PaymentTransaction,
    Product,
    StripeSession,
)
from cedros_pay.core.money import Money
from cedros_pay.integrations.stripe.client import (
    CheckoutLine,
    CheckoutRequest,
    CreatedSession,
    StripePrice,
)
from cedros_pay.resolvers.carts import MAX_CART_ITEMS, MAX_QUANTITY
from cedros_pay.resolvers.coupon_check import CouponChecker
from cedros_pay.resolvers.pricing import (
    SCOPE_ALL,
    CouponPhase,
    CouponView,
    PaymentMethod,
    Priced,
    Pricing,
    find_coupon,
    select_coupons,
    stack_coupons,
)
from cedros_pay.resolvers.quotes import Quotes
from cedros_pay.resolvers.stripe_events import StripeEvents
from cedros_pay.storage.repos import CouponRepo, PaymentRepo, ProductRepo, StripeSessionRepo

MAX_AMOUNT_CENTS = 99_999_999  # spec 21 ValidateStripeAmount
MAX_URL_LENGTH = 2048
MAX_EMAIL_LENGTH = 254
# Stripe's metadata limits: 50 keys, keys up to 40 characters (no brackets), values up
# to 500. We keep 10 keys for our own entries.
MAX_CLIENT_METADATA_KEYS = 40
MAX_STRIPE_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_SESSION_ID = 255
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SESSION_ID = re.compile(r"[A-Za-z0-9_]+")
RESERVED_KEYS = ("resource_id", "tenant_id", "coupon_code", "original_amount_cents",
                 "discount_amount_cents", "cart_items", "total_quantity")


class CheckoutGateway(Protocol):
    """The Stripe calls checkout makes (integrations/stripe `StripeClient`)."""

    async def create_checkout_session(self, req: CheckoutRequest) -> CreatedSession: ...
    async def retrieve_price(self, price_id: str) -> StripePrice: ...
    async def create_coupon(self, *, amount_off: int, currency: str, name: str) -> str: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Redirects:
    """The configured defaults (stripe.success_url may hold `{CHECKOUT_SESSION_ID}`)."""

    success_url: str = ""
    cancel_url: str = ""
    tax_rate_id: str = ""


@dataclass(frozen=True, slots=True)
class SessionInput:
    resource_id: str
    customer_email: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    success_url: str = ""
    cancel_url: str = ""
    coupon_code: str | None = None


@dataclass(frozen=True, slots=True)
class CartCheckoutItem:
    resource_id: str = ""
    price_id: str = ""
    quantity: int = 1
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CartCheckoutInput:
    items: Sequence[CartCheckoutItem]
    customer_email: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    coupon_code: str | None = None
    success_url: str = ""
    cancel_url: str = ""


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    session_id: str
    url: str
    total_items: int = 1
    amount: Money | None = None


@dataclass(frozen=True, slots=True)
class _Line:
    product: Product
    quantity: int
    unit: Priced  # one unit after the line's coupons


def check_metadata(metadata: Mapping[str, str], what: str = "metadata") -> dict[str, str]:
    """Client metadata as Stripe will take it; anything Stripe would refuse is ours to
    refuse first (`invalid_field`), so bad input never becomes a `stripe_error`."""
    if len(metadata) > MAX_CLIENT_METADATA_KEYS:
        raise CedrosError(ErrorCode.INVALID_FIELD,
                          f"{what} may hold at most {MAX_CLIENT_METADATA_KEYS} keys",
                          {"field": what})
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY or "[" in key or "]" in key:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"{what} keys must be 1-{MAX_METADATA_KEY} characters without "
                              "brackets", {"field": what})
        if len(value) > MAX_METADATA_VALUE:
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"{what}.{key} may be at most {MAX_METADATA_VALUE} characters",
                              {"field": f"{what}.{key}"})
    return dict(metadata)


def _check_url(name: str, url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    if len(url) > MAX_URL_LENGTH or not re.match(r"https?://[^/\s]+", url) or " " in url:
        raise CedrosError(ErrorCode.INVALID_FIELD, f"{name} must be an http(s) URL",
                          {"field": name})
    return url


def _check_email(email: str) -> str:
    email = email.strip()
    if email and (len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email)):
        raise CedrosError(ErrorCode.INVALID_FIELD, "customerEmail is not an email address",
                          {"field": "customerEmail"})
    return email


def _check_amount(amount: Money, *, known: bool = True) -> None:
    """`known` is False when a line is sold by Stripe price id alone (Stripe has its
    amount, we do not, and no coupon needed it)."""
    if known and amount.atomic <= 0:
        raise CedrosError(ErrorCode.INVALID_AMOUNT,
                          "nothing to pay by card: the price after coupons is zero")
    if amount.atomic > MAX_AMOUNT_CENTS:
        raise CedrosError(ErrorCode.INVALID_AMOUNT,
                          f"card payments are limited to {MAX_AMOUNT_CENTS} cents")


def _codes(coupons: Sequence[object]) -> str:
    return ",".join(dict.fromkeys(getattr(c, "code", "") for c in coupons))


def check_session_id(session_id: str) -> str:
    session_id = session_id.strip()
    if not session_id:
        raise CedrosError(ErrorCode.MISSING_FIELD, "session_id is required",
                          {"field": "session_id"})
    if len(session_id) > MAX_SESSION_ID or not _SESSION_ID.fullmatch(session_id):
        raise CedrosError(ErrorCode.INVALID_FIELD, "session_id is not a Checkout session id",
                          {"field": "session_id"})
    return session_id


class Checkout:
    """Stripe Checkout for products and carts; `events` handles Stripe's webhooks."""

    def __init__(self, *, gateway: CheckoutGateway | None, events: StripeEvents,
                 quotes: Quotes, pricing: Pricing, coupon_checker: CouponChecker,
                 coupons: CouponRepo, products: ProductRepo, sessions: StripeSessionRepo,
                 payments: PaymentRepo, clock: Clock, redirects: Redirects) -> None:
        self._gateway = gateway
        self.events = events
        self._quotes = quotes
        self._pricing = pricing
        self._checker = coupon_checker
        self._coupons = coupons
        self._products = products
        self._sessions = sessions
        self._payments = payments
        self._clock = clock
        self._redirects = redirects

    async def aclose(self) -> None:
        if self._gateway is not None:
            await self._gateway.aclose()

    def _stripe(self) -> CheckoutGateway:
        if self._gateway is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              "card payments are not enabled on this server")
        return self._gateway

    def _urls(self, success: str, cancel: str) -> tuple[str, str]:
        success_url = _check_url("successUrl", success) or self._redirects.success_url
        cancel_url = _check_url("cancelUrl", cancel) or self._redirects.cancel_url
        if not success_url:
            raise CedrosError(ErrorCode.MISSING_FIELD,
                              "successUrl is required (no stripe.success_url is configured)",
                              {"field": "successUrl"})
        return success_url, cancel_url or success_url

    async def _check_coupon(self, tenant: str, code: str | None,
                            product_ids: Sequence[str]) -> str | None:
        """The manual code if it can be used on these products by card, else its spec code
        (cart rule, spec 02: it must apply to every item)."""
        if code is None or not code.strip():
            return None
        result = await self._checker.validate(tenant, code, product_ids, PaymentMethod.STRIPE)
        if not result.valid:
            raise CedrosError(result.error_code or ErrorCode.INVALID_COUPON, result.error,
                              {"couponCode": code})
        wanted = set(product_ids)
        if wanted and not wanted.issubset(result.applicable_products):
            raise CedrosError(ErrorCode.COUPON_NOT_APPLICABLE,
                              "This coupon does not apply to every item in the cart",
                              {"couponCode": code})
        return result.code

    async def _priced(self, tenant: str, product: Product, code: str | None,
                      view: CouponView) -> Priced:
        """The product's card price with every applicable coupon (spec 19 ScopeAll). A
        product sold by Stripe price id alone is priced from Stripe when a coupon applies."""
        priced = await self._pricing.fiat_price(tenant, product, code, view)
        if priced is not None:
            return priced
        if not product.stripe_price_id:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {product.id!r} cannot be paid by card",
                              {"resource": product.id})
        manual = await find_coupon(self._coupons, tenant, code) if code else None
        if not select_coupons(view.auto, manual, product_id=product.id,
                              method=PaymentMethod.STRIPE, phase=CouponPhase.ALL, now=view.now):
            return _price_id_only(product)
        price = await self._stripe().retrieve_price(product.stripe_price_id)
        if price.unit_amount is None or not price.active:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {product.id!r} has no usable Stripe price",
                              {"resource": product.id})
        fiat = replace(product, fiat_amount=price.unit_amount, fiat_currency=price.currency)
        priced = await self._pricing.fiat_price(tenant, fiat, code, view)
        if priced is None:
            raise CedrosError(ErrorCode.INVALID_RESOURCE,
                              f"resource {product.id!r} cannot be paid by card",
                              {"resource": product.id})
        return priced

    async def create_session(self, tenant: str, req: SessionInput) -> CheckoutSession:
        """POST /paywall/v1/stripe-session (spec 02): a payment-mode session for one
        product at its card price after coupons. The product's Stripe price id is sent when
        no coupon changes the price, the final unit amount otherwise."""
        stripe = self._stripe()
        product = await self._quotes.product(tenant, req.resource_id)
        metadata = check_metadata(req.metadata)
        email = _check_email(req.customer_email)
        success_url, cancel_url = self._urls(req.success_url, req.cancel_url)
        code = await self._check_coupon(tenant, req.coupon_code, [product.id])
        view = await self._pricing.view(tenant)
        priced = await self._priced(tenant, product, code, view)
        amount = priced.effective
        _check_amount(amount, known=priced.original.atomic > 0)
        currency = amount.asset.code.lower()
        if product.stripe_price_id and amount == priced.original:
            line = CheckoutLine(quantity=1, price_id=product.stripe_price_id)
        else:
            line = CheckoutLine(quantity=1, amount_cents=amount.atomic, currency=currency,
                                name=product.description or product.id)
        metadata.update({"resource_id": product.id, "tenant_id": tenant})
        if priced.applied:
            metadata.update({
                "coupon_code": _codes(priced.applied),
                "original_amount_cents": str(priced.original.atomic),
                "discount_amount_cents": str(priced.discount.atomic)})
        created = await stripe.create_checkout_session(CheckoutRequest(
            lines=[line], success_url=success_url, cancel_url=cancel_url, metadata=metadata,
            customer_email=email, tax_rate_id=self._redirects.tax_rate_id))
        await self._sessions.save(StripeSession(
            id=created.id, tenant_id=tenant, resource_id=product.id,
            amount_cents=amount.atomic, currency=currency, customer_email=email,
            metadata=metadata, created_at=self._clock.now()))
        return CheckoutSession(session_id=created.id, url=created.url, amount=amount)

    async def _cart_product(self, tenant: str, index: int, item: CartCheckoutItem) -> Product:
        if item.price_id:
            product = await self._products.get_by_stripe_price_id(tenant, item.price_id)
            if (product is None or not product.active
                    or (item.resource_id and item.resource_id != product.id)):
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"items[{index}].priceId is not a price of this catalog",
                                  {"field": f"items[{index}].priceId"})
            return product
        if not item.resource_id:
            raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                              f"items[{index}] needs a priceId or a resource",
                              {"field": f"items[{index}]"})
        return await self._quotes.product(tenant, item.resource_id)

    async def create_cart_session(self, tenant: str, req: CartCheckoutInput) -> CheckoutSession:
        """POST /paywall/v1/cart/checkout (spec 02): one session for several products.

        Each line gets its catalog coupons; the checkout coupons apply to the total as one
        Stripe coupon (amount off, once). A manual coupon must apply to every item.
        """
        stripe = self._stripe()
        if not req.items:
            raise CedrosError(ErrorCode.EMPTY_CART, "cart must contain at least one item")
        if len(req.items) > MAX_CART_ITEMS:
            raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                              f"cart may hold at most {MAX_CART_ITEMS} items")
        products: list[Product] = []
        for index, item in enumerate(req.items):
            if item.quantity > MAX_QUANTITY:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"items[{index}].quantity may be at most {MAX_QUANTITY}",
                                  {"field": f"items[{index}].quantity"})
            check_metadata(item.metadata, f"items[{index}].metadata")
            products.append(await self._cart_product(tenant, index, item))
        metadata = check_metadata(req.metadata)
        email = _check_email(req.customer_email)
        success_url, cancel_url = self._urls(req.success_url, req.cancel_url)
        code = await self._check_coupon(tenant, req.coupon_code,
                                        list(dict.fromkeys(p.id for p in products)))
        view = await self._pricing.view(tenant)
        lines: list[_Line] = []
        for index, (item, product) in enumerate(zip(req.items, products, strict=True)):
            priced = await self._priced(tenant, product, code, view)
            # Line coupons: catalog-level ones, and checkout-level ones limited to products;
            # site-wide checkout coupons apply once, to the total.
            own = priced.catalog + tuple(c for c in priced.checkout
                                         if c.scope.strip().lower() != SCOPE_ALL)
            unit = stack_coupons(priced.original, own, self._pricing.rounding)
            if lines and unit.asset != lines[0].unit.effective.asset:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"items[{index}] is priced in {unit.asset.code}, the cart in "
                                  f"{lines[0].unit.effective.asset.code}",
                                  {"field": f"items[{index}]"})
            lines.append(_Line(product=product, quantity=max(1, item.quantity),
                               unit=Priced(original=priced.original, effective=unit,
                                           catalog=own)))
        subtotal = Money.zero(lines[0].unit.effective.asset)
        for line in lines:
            subtotal = subtotal + line.unit.effective * line.quantity
        total = await self._pricing.checkout_total(tenant, subtotal, code,
                                                   PaymentMethod.STRIPE, view)
        _check_amount(total.effective,
                      known=all(line.unit.original.atomic > 0 for line in lines))
        currency = subtotal.asset.code.lower()
        cart_id = new_cart_id()
        applied = [c for line in lines for c in line.unit.catalog] + list(total.checkout)
        total_quantity = sum(line.quantity for line in lines)
        ours = {"resource_id": cart_id, "tenant_id": tenant, "cart_items": str(len(lines)),
                "total_quantity": str(total_quantity)}
        if applied:
            ours["coupon_code"] = _codes(applied)
        items = _item_metadata(lines)
        metadata.update(ours)
        local = {**metadata, **items}
        if len(metadata) + len(items) <= MAX_STRIPE_METADATA_KEYS:
            metadata.update(items)  # spec 21's item_N_* keys, when Stripe can hold them
        coupon_id = ""
        discount = subtotal.atomic - total.effective.atomic
        if discount > 0:
            coupon_id = await stripe.create_coupon(
                amount_off=discount, currency=currency, name=_codes(total.checkout))
        created = await stripe.create_checkout_session(CheckoutRequest(
            lines=[_checkout_line(line, currency) for line in lines], success_url=success_url,
            cancel_url=cancel_url, metadata=metadata, customer_email=email,
            coupon_id=coupon_id, tax_rate_id=self._redirects.tax_rate_id))
        await self._sessions.save(StripeSession(
            id=created.id, tenant_id=tenant, resource_id=cart_id,
            amount_cents=total.effective.atomic, currency=currency, customer_email=email,
            metadata=local, created_at=self._clock.now()))
        return CheckoutSession(session_id=created.id, url=created.url,
                               total_items=total_quantity, amount=total.effective)

    async def verify(self, tenant: str, session_id: str) -> PaymentTransaction:
        """GET /paywall/v1/stripe-session/verify: the payment the verified webhook recorded
        for the session; unknown or not yet paid is `session_not_found`."""
        session_id = check_session_id(session_id)
        tx = await self._payments.get(tenant, STRIPE_SIGNATURE_PREFIX + session_id)
        if tx is None:
            raise CedrosError(ErrorCode.SESSION_NOT_FOUND,
                              "no paid Checkout session with this id",
                              {"sessionId": session_id})
        return tx


def _price_id_only(product: Product) -> Priced:
    """A product sold by Stripe price id without a catalog amount and without coupons:
    Stripe knows the amount; we only know it is the product's price."""
    zero = Money(get_asset((product.fiat_currency or "usd").upper()), 0)
    return Priced(original=zero, effective=zero)


def _checkout_line(line: _Line, currency: str) -> CheckoutLine:
    product = line.product
    if product.stripe_price_id and line.unit.effective == line.unit.original:
        return CheckoutLine(quantity=line.quantity, price_id=product.stripe_price_id)
    return CheckoutLine(quantity=line.quantity, amount_cents=line.unit.effective.atomic,
                        currency=currency, name=product.description or product.id)


def _item_metadata(lines: Sequence[_Line]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        out[f"item_{i}_resource"] = line.product.id
        out[f"item_{i}_quantity"] = str(line.quantity)
        if line.product.stripe_price_id:
            out[f"item_{i}_price_id"] = line.product.stripe_price_id
    return out
