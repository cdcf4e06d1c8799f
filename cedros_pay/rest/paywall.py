"""Quotes: POST /paywall/v1/quote and POST /paywall/v1/cart/quote (spec 02)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.resolvers.carts import CartItemInput, CartQuoteInput
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import (
    CartQuoteRequest,
    CartQuoteResponse,
    ErrorEnvelope,
    PaymentRequired,
    QuoteRequest,
)
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import spec_json

NO_STORE = {"Cache-Control": "no-store"}


@endpoint("Quote one resource for x402 (answers 402 Payment Required)", tag="paywall",
          request=QuoteRequest,
          responses={402: PaymentRequired, 400: ErrorEnvelope, 404: ErrorEnvelope})
async def quote(request: Request) -> Response:
    body = await parse_body(request, QuoteRequest)
    q = await services(request).quotes.quote(tenant(request), body.resource, body.coupon_code)
    return spec_json(render.payment_required([q.crypto] if q.crypto else []), status=402,
                     headers=NO_STORE)


@endpoint("Quote a multi-item cart for one x402 payment", tag="paywall",
          request=CartQuoteRequest,
          responses={200: CartQuoteResponse, 400: ErrorEnvelope, 404: ErrorEnvelope})
async def cart_quote(request: Request) -> Response:
    body = await parse_body(request, CartQuoteRequest)
    result = await services(request).carts.create(tenant(request), CartQuoteInput(
        items=[CartItemInput(resource_id=i.resource, quantity=i.quantity, metadata=i.metadata)
               for i in body.items],
        coupon_code=body.coupon_code, metadata=body.metadata,
    ))
    return spec_json(render.cart_quote(result), headers=NO_STORE)
