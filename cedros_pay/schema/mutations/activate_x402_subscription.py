"""activateX402Subscription: bind a recorded x402 payment to a wallet's subscription
(spec 03 /subscription/x402/activate)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cedros_pay.schema.context import Context
from cedros_pay.schema.inputs import check_metadata, check_text
from cedros_pay.schema.subscription_plans import subscriptions_of
from cedros_pay.schema.types.subscription import X402Activation


async def activate_x402_subscription(info: strawberry.Info[Context], product_id: str,
                                     wallet: str, payment_signature: str | None = None,
                                     metadata: JSON | None = None) -> X402Activation:
    a = await subscriptions_of(info).activate(
        info.context.tenant, check_text("productId", product_id.strip()),
        check_text("wallet", wallet), check_text("paymentSignature", payment_signature or ""),
        check_metadata("metadata", metadata))
    return X402Activation.from_domain(a)
