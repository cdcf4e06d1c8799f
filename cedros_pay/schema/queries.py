"""Query fields: parse arguments, call one resolver, build types (DESIGN §2 rule 2).

Top-level fields are nullable so one failing field (an unknown product, a refused admin
field) yields its error beside the other fields' data instead of blanking the response.
"""

from __future__ import annotations

import strawberry

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Coupon as CouponModel
from cedros_pay.resolvers.catalog import CatalogView
from cedros_pay.resolvers.pricing import PaymentMethod as Rail
from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_product_id, check_product_ids, check_text
from cedros_pay.schema.pagination import Connection, Listing, listing, page, paginate
from cedros_pay.schema.payments import payment, payments
from cedros_pay.schema.permissions import ADMIN
from cedros_pay.schema.refunds import Refund, refunds
from cedros_pay.schema.subscription_plans import subscription_status, subscriptions
from cedros_pay.schema.types.cart import Cart
from cedros_pay.schema.types.coupon import Coupon, CouponValidation
from cedros_pay.schema.types.enums import PaymentMethod
from cedros_pay.schema.types.payment import Payment, PaymentConnection
from cedros_pay.schema.types.product import Product, product_nodes
from cedros_pay.schema.types.quote import Quote
from cedros_pay.schema.types.subscription import SubscriptionRecord, SubscriptionStatus
from cedros_pay.schema.webhooks import WebhookDelivery, webhook_deliveries

MAX_CART_ID = 128


def _product_key(node: Product) -> str:
    return node.id


def _same(node: Product) -> Product:
    return node


def _coupon_key(coupon: CouponModel) -> str:
    return coupon.code


def product_listing(view: CatalogView) -> Listing[Product]:
    """The product edges in cursor order. The catalog snapshot keeps them (`rendered`),
    so they are shared between requests: resolvers only read them."""
    return listing(product_nodes(view), kind="product", key=_product_key, node=_same)


async def products(info: strawberry.Info[Context], first: int | None = None,
                   after: str | None = None) -> Connection[Product] | None:
    snapshot = await info.context.services.catalog.snapshot(info.context.tenant)
    return page(snapshot.rendered(product_listing), first=first, after=after)


async def product(info: strawberry.Info[Context], id: strawberry.ID) -> Product | None:
    view = await info.context.loaders.product.load(check_product_id("id", str(id)))
    return Product.from_domain(view)


async def validate_coupon(info: strawberry.Info[Context], code: str,
                          product_ids: list[str] | None = None,
                          payment_method: PaymentMethod | None = None,
                          ) -> CouponValidation | None:
    ids = check_product_ids("productIds", product_ids or [])
    rail = Rail(payment_method.value) if payment_method else None
    result = await info.context.services.coupons.validate(info.context.tenant, code, ids, rail)
    return CouponValidation.from_domain(result)


async def quote(info: strawberry.Info[Context], resource: str,
                coupon_code: str | None = None) -> Quote | None:
    check_text("resource", resource)
    result = await info.context.services.quotes.quote(
        info.context.tenant, resource, coupon_code or None)
    return Quote.from_domain(result)


async def cart(info: strawberry.Info[Context], id: str) -> Cart | None:
    if not id or len(id) > MAX_CART_ID:
        raise CedrosError(ErrorCode.INVALID_FIELD, "id must be a cart id", {"field": "id"})
    services = info.context.services
    found = await services.carts.get(info.context.tenant, id)
    return Cart.from_domain(found, services.clock.now())


async def coupons(info: strawberry.Info[Context], include_inactive: bool = False,
                  first: int | None = None, after: str | None = None,
                  ) -> Connection[Coupon] | None:
    found = await info.context.services.catalog.list_coupons(info.context.tenant,
                                                             include_inactive)
    return paginate(found, kind="coupon", key=_coupon_key, first=first, after=after,
                    node=Coupon.from_domain)


@strawberry.type
class Query:
    products: Connection[Product] | None = strawberry.field(
        resolver=products, description="Products on sale, with their effective prices.")
    product: Product | None = strawberry.field(
        resolver=product, description="One product on sale; `product_not_found` otherwise.")
    validate_coupon: CouponValidation | None = strawberry.field(
        resolver=validate_coupon,
        description="Whether a coupon code can be used; one that cannot is `valid: false` "
                    "with an `errorCode`, not an error.")
    quote: Quote | None = strawberry.field(
        resolver=quote, description="Prices for one resource on both payment methods; a "
                                    "coupon that cannot be used is ignored (spec 19).")
    cart: Cart | None = strawberry.field(
        resolver=cart, description="A stored cart quote by id (`cart_…` or `cart:cart_…`).")
    coupons: Connection[Coupon] | None = strawberry.field(
        resolver=coupons, permission_classes=ADMIN,
        description="Admin: every coupon, optionally the inactive ones too.")
    payment: Payment | None = strawberry.field(
        resolver=payment, description="This tenant's recorded payment with this signature "
                                      "(`stripe:<sessionId>` for cards), or null.")
    payments: PaymentConnection | None = strawberry.field(
        resolver=payments, permission_classes=ADMIN,
        description="Admin: recorded payments, newest first, with per-asset totals.")
    webhook_deliveries: Connection[WebhookDelivery] | None = strawberry.field(
        resolver=webhook_deliveries, permission_classes=ADMIN,
        description="Admin: the webhook queue, newest first, optionally one status.")
    subscription_status: SubscriptionStatus | None = strawberry.field(
        resolver=subscription_status,
        description="A wallet's or Stripe customer's subscription to a product (spec 03).")
    subscriptions: Connection[SubscriptionRecord] | None = strawberry.field(
        resolver=subscriptions, permission_classes=ADMIN,
        description="Admin: subscriptions, oldest first, by status, product or rail.")
    refunds: Connection[Refund] | None = strawberry.field(
        resolver=refunds, permission_classes=ADMIN,
        description="Admin: open refunds (pending, approved), oldest first.")
