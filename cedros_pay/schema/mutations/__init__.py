"""Mutation fields, one module each (saleor's habit); admin ones behind `IsAdmin`."""

from __future__ import annotations

import strawberry

from cedros_pay.schema.mutations.activate_x402_subscription import activate_x402_subscription
from cedros_pay.schema.mutations.cancel_subscription import cancel_subscription
from cedros_pay.schema.mutations.change_subscription import change_subscription
from cedros_pay.schema.mutations.create_cart_checkout import create_cart_checkout
from cedros_pay.schema.mutations.create_cart_quote import create_cart_quote
from cedros_pay.schema.mutations.create_checkout_session import create_checkout_session
from cedros_pay.schema.mutations.create_coupon import create_coupon
from cedros_pay.schema.mutations.create_product import create_product
from cedros_pay.schema.mutations.create_subscription_checkout import (
    create_subscription_checkout,
)
from cedros_pay.schema.mutations.create_subscription_quote import create_subscription_quote
from cedros_pay.schema.mutations.delete_coupon import delete_coupon
from cedros_pay.schema.mutations.delete_product import delete_product
from cedros_pay.schema.mutations.reactivate_subscription import reactivate_subscription
from cedros_pay.schema.mutations.update_coupon import update_coupon
from cedros_pay.schema.mutations.update_product import update_product
from cedros_pay.schema.permissions import ADMIN
from cedros_pay.schema.refunds import approve_refund, deny_refund, request_refund
from cedros_pay.schema.webhooks import delete_webhook_delivery, retry_webhook_delivery


@strawberry.type
class Mutation:
    create_cart_quote = strawberry.mutation(
        resolver=create_cart_quote,
        description="Price and store a cart for one x402 payment (spec 02 /cart/quote).")
    create_checkout_session = strawberry.mutation(
        resolver=create_checkout_session,
        description="A Stripe Checkout session for one product (spec 02 /stripe-session).")
    create_cart_checkout = strawberry.mutation(
        resolver=create_cart_checkout,
        description="A Stripe Checkout session for a cart (spec 02 /cart/checkout).")
    create_product = strawberry.mutation(
        resolver=create_product, permission_classes=ADMIN, description="Admin.")
    update_product = strawberry.mutation(
        resolver=update_product, permission_classes=ADMIN, description="Admin.")
    delete_product = strawberry.mutation(
        resolver=delete_product, permission_classes=ADMIN, description="Admin: soft delete.")
    create_coupon = strawberry.mutation(
        resolver=create_coupon, permission_classes=ADMIN, description="Admin.")
    update_coupon = strawberry.mutation(
        resolver=update_coupon, permission_classes=ADMIN, description="Admin.")
    delete_coupon = strawberry.mutation(
        resolver=delete_coupon, permission_classes=ADMIN, description="Admin: soft delete.")
    retry_webhook_delivery = strawberry.mutation(
        resolver=retry_webhook_delivery, permission_classes=ADMIN,
        description="Admin: deliver again now with a fresh attempt budget, same eventId.")
    delete_webhook_delivery = strawberry.mutation(
        resolver=delete_webhook_delivery, permission_classes=ADMIN,
        description="Admin: remove from the queue; it is never delivered.")
    create_subscription_quote = strawberry.mutation(
        resolver=create_subscription_quote,
        description="One x402 period of a subscription product (spec 03 /subscription/quote).")
    activate_x402_subscription = strawberry.mutation(
        resolver=activate_x402_subscription,
        description="Bind a recorded x402 payment to the wallet's subscription, once per "
                    "signature (spec 03 /subscription/x402/activate).")
    create_subscription_checkout = strawberry.mutation(
        resolver=create_subscription_checkout,
        description="Stripe Checkout in subscription mode (spec 03 /subscription/stripe-session).")
    cancel_subscription = strawberry.mutation(
        resolver=cancel_subscription, description="Cancel now or at the period end.")
    change_subscription = strawberry.mutation(
        resolver=change_subscription, description="Move a Stripe subscription to another plan.")
    reactivate_subscription = strawberry.mutation(
        resolver=reactivate_subscription,
        description="Undo a cancellation at period end, before the period ends.")
    request_refund = strawberry.mutation(
        resolver=request_refund,
        description="Ask for a refund, signed by the purchase's payer (spec 04 request).")
    approve_refund = strawberry.mutation(
        resolver=approve_refund, permission_classes=ADMIN,
        description="Admin: the x402 quote the merchant pays (card purchases: Stripe).")
    deny_refund = strawberry.mutation(
        resolver=deny_refund, permission_classes=ADMIN,
        description="Admin: refuse an open refund; it is removed.")
