"""Cart quotes: several resources, one x402 payment (spec 19 GenerateCartQuote, spec 02).

Prices are frozen in the stored quote: verification compares the payment with the stored
total, exactly (DESIGN §3), and checks expiry then (spec 06), not at lookup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_cart_id, new_memo_nonce
from cedros_pay.core.models import CartItem, CartQuote, Product
from cedros_pay.core.money import Money, display
from cedros_pay.resolvers.pricing import CouponView, PaymentMethod, Priced, Pricing
from cedros_pay.resolvers.quotes import CryptoRequirement, Quotes
from cedros_pay.storage.repos import CartQuoteRepo
from cedros_pay.x402.memo import interpolate_memo

MAX_CART_ITEMS = 100
MAX_QUANTITY = 1_000_000


@dataclass(frozen=True, slots=True)
class CartItemInput:
    resource_id: str
    quantity: int = 1
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CartQuoteInput:
    items: Sequence[CartItemInput]
    coupon_code: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CartLine:
    product: Product
    quantity: int
    unit: Priced  # catalog-phase price of one unit


@dataclass(frozen=True, slots=True)
class CartQuoteResult:
    cart: CartQuote
    lines: list[CartLine]
    requirement: CryptoRequirement
    total: Priced  # checkout phase on the sum of the lines


def _join(codes: Sequence[str]) -> str:
    return ",".join(dict.fromkeys(codes))


class Carts:
    def __init__(self, carts: CartQuoteRepo, quotes: Quotes, pricing: Pricing,
                 clock: Clock) -> None:
        self._carts = carts
        self._quotes = quotes
        self._pricing = pricing
        self._clock = clock

    async def _lines(self, tenant: str, items: Sequence[CartItemInput],
                     view: CouponView) -> list[CartLine]:
        if not items:
            raise CedrosError(ErrorCode.EMPTY_CART, "cart must contain at least one item")
        if len(items) > MAX_CART_ITEMS:
            raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                              f"cart may hold at most {MAX_CART_ITEMS} items")
        lines: list[CartLine] = []
        for index, item in enumerate(items):
            if not item.resource_id:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"items[{index}].resource is required",
                                  {"field": f"items[{index}].resource"})
            if item.quantity > MAX_QUANTITY:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"items[{index}].quantity may be at most {MAX_QUANTITY}",
                                  {"field": f"items[{index}].quantity"})
            product = await self._quotes.product(tenant, item.resource_id)
            unit = await self._pricing.catalog_crypto_unit(tenant, product, view)
            if unit is None:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"resource {product.id!r} has no crypto price",
                                  {"resource": product.id})
            first = lines[0].unit.effective.asset.code if lines else unit.effective.asset.code
            if unit.effective.asset.code != first:
                raise CedrosError(ErrorCode.INVALID_CART_ITEM,
                                  f"mixed tokens in cart (got {first} and "
                                  f"{unit.effective.asset.code})")
            # Spec 17: a quantity of zero or less means one.
            lines.append(CartLine(product=product, quantity=max(1, item.quantity), unit=unit))
        return lines

    async def create(self, tenant: str, req: CartQuoteInput) -> CartQuoteResult:
        """Quote and store a cart: catalog coupons per item, then checkout coupons on the
        total, rounded up to cents (spec 19)."""
        view = await self._pricing.view(tenant)
        lines = await self._lines(tenant, req.items, view)
        subtotal = Money.zero(lines[0].unit.effective.asset)
        original = Money.zero(lines[0].unit.original.asset)
        for line in lines:
            subtotal = subtotal + line.unit.effective * line.quantity
            original = original + line.unit.original * line.quantity
        total = await self._pricing.checkout_total(tenant, subtotal, req.coupon_code,
                                                   PaymentMethod.X402, view)
        now = self._clock.now()
        cart_id = new_cart_id()
        catalog_codes = [c.code for line in lines for c in line.unit.catalog]
        checkout_codes = [c.code for c in total.checkout]
        metadata = {
            **req.metadata,
            "coupon_codes": _join(catalog_codes + checkout_codes),
            "catalog_coupons": _join(catalog_codes),
            "checkout_coupons": _join(checkout_codes),
            "original_amount": str(original.atomic),
            "discounted_amount": str(total.effective.atomic),
            "item_count": str(len(lines)),
            "total_quantity": str(sum(line.quantity for line in lines)),
        }
        metadata = {k: v for k, v in metadata.items() if v != ""}
        cart = CartQuote(
            id=cart_id, tenant_id=tenant,
            items=[CartItem(resource_id=line.product.id, quantity=line.quantity,
                            price_atomic=line.unit.effective.atomic,
                            asset=line.unit.effective.asset.code,
                            metadata={**req.items[i].metadata,
                                      **({"coupons": _join([c.code for c in line.unit.catalog])}
                                         if line.unit.catalog else {})})
                   for i, line in enumerate(lines)],
            total_atomic=total.effective.atomic, asset=total.effective.asset.code,
            metadata=metadata, created_at=now, expires_at=now + self._quotes.terms.cart_ttl,
        )
        requirement = self._quotes.requirement(
            resource=f"cart:{cart_id}", amount=total.effective,
            description=f"Cart purchase ({display(total.effective)})", recipient_account="",
            memo=interpolate_memo("", {"resource": cart_id, "nonce": new_memo_nonce()}),
            ttl=self._quotes.terms.cart_ttl,
        )
        await self._carts.save(cart)
        return CartQuoteResult(cart=cart, lines=lines, requirement=requirement, total=total)

    async def get(self, tenant: str, cart_id: str) -> CartQuote:
        cart = await self._carts.get(tenant, cart_id.removeprefix("cart:"))
        if cart is None:
            raise CedrosError(ErrorCode.CART_NOT_FOUND, f"cart {cart_id!r} not found",
                              {"cartId": cart_id})
        return cart
