"""Stripe: the one client wrapper around the official SDK (DESIGN §5: only it imports
`stripe`)."""

from cedros_pay.integrations.stripe.client import (
    CheckoutLine,
    CheckoutRequest,
    CreatedSession,
    StripeClient,
    StripeEvent,
    StripePrice,
)

__all__ = ["CheckoutLine", "CheckoutRequest", "CreatedSession", "StripeClient",
           "StripeEvent", "StripePrice"]
