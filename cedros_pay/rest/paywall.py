"""Quotes: POST /paywall/v1/quote and POST /paywall/v1/cart/quote (spec 02).

The quote endpoint answers 402, so the x402 retry contract holds here too: the same POST
repeated with a payment header is settled on the spot and answered 200 with the grant.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import ErrorCode
from cedros_pay.resolvers.carts import CartItemInput, CartQuoteInput
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import COUPON_ERRORS, IDEMPOTENCY_KEY, PAYMENT_ERRORS, endpoint
from cedros_pay.rest.models import (
    AccessGrantResponse,
    CartQuoteRequest,
    CartQuoteResponse,
    PaymentRequired,
    QuoteRequest,
)
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.payments import (
    PAYMENT_HEADERS,
    PAYMENT_RESPONSE_HEADERS,
    granted,
    settle_or_offer,
)
from cedros_pay.rest.responses import spec_json

NO_STORE = {"Cache-Control": "no-store"}


@endpoint("Quote one resource for x402 (answers 402 Payment Required)", tag="paywall",
          request=QuoteRequest, headers=PAYMENT_HEADERS,
          responses={402: PaymentRequired, 200: AccessGrantResponse}, errors=PAYMENT_ERRORS,
          response_headers=PAYMENT_RESPONSE_HEADERS,
          description="Repeat the request with a payment header to settle it here.")
async def quote(request: Request) -> Response:
    body = await parse_body(request, QuoteRequest)
    outcome = await settle_or_offer(request, services(request).payments, tenant(request),
                                    body.resource, body.coupon_code)
    return outcome if isinstance(outcome, Response) else granted(outcome, timings=False)


@endpoint("Quote a multi-item cart for one x402 payment", tag="paywall",
          request=CartQuoteRequest, headers=(IDEMPOTENCY_KEY,),
          responses={200: CartQuoteResponse},
          errors=(ErrorCode.EMPTY_CART, ErrorCode.INVALID_CART_ITEM, ErrorCode.INVALID_RESOURCE,
                  ErrorCode.RESOURCE_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND, *COUPON_ERRORS))
async def cart_quote(request: Request) -> Response:
    body = await parse_body(request, CartQuoteRequest)
    result = await services(request).carts.create(tenant(request), CartQuoteInput(
        items=[CartItemInput(resource_id=i.resource, quantity=i.quantity, metadata=i.metadata)
               for i in body.items],
        coupon_code=body.coupon_code, metadata=body.metadata,
    ))
    return spec_json(render.cart_quote(result), headers=NO_STORE)
