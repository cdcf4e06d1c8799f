"""Card checkout over REST (spec 02): Checkout sessions for a product or a cart, their
verification, Stripe's webhook, and the redirect pages.

`/webhook/stripe`, `/stripe/success` and `/stripe/cancel` live outside the route prefix
(spec 02: a merchant's Stripe dashboard keeps one URL), and under it too when one is set.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from cedros_pay.core.assets import find_asset
from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import PaymentTransaction
from cedros_pay.core.money import Money
from cedros_pay.resolvers.checkout import (
    MAX_CLIENT_METADATA_KEYS,
    MAX_EMAIL_LENGTH,
    MAX_METADATA_KEY,
    MAX_METADATA_VALUE,
    MAX_SESSION_ID,
    CartCheckoutInput,
    CartCheckoutItem,
    CheckoutSession,
    SessionInput,
    check_session_id,
)
from cedros_pay.resolvers.stripe_events import ASYNC_SUCCEEDED, COMPLETED
from cedros_pay.rest.context import request_header, services, tenant
from cedros_pay.rest.endpoint import COUPON_ERRORS, IDEMPOTENCY_KEY, Header, endpoint
from cedros_pay.rest.models import (
    CART_ITEMS,
    NOT_BLANK,
    Integer,
    StrMap,
    _Body,
    _NestedBody,
    quantity,
    required_text,
    resolver_required,
)
from cedros_pay.rest.parsing import parse_body, read_body
from cedros_pay.rest.responses import spec_json

NO_STORE = {"Cache-Control": "no-store"}
MAX_EVENT_BYTES = 512 * 1024  # Stripe's event payloads stay well below this


_E = ErrorCode
# What Stripe takes as metadata (resolvers/checkout.py refuses the rest as invalid_field).
StripeMetadata = Annotated[dict[str, str], Field(json_schema_extra={
    "maxProperties": MAX_CLIENT_METADATA_KEYS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY, "pattern": r"^[^\[\]]*$"},
    "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE}})]
_URL = r"^\s*(https?://[^/\s][^ ]*)?\s*$"
_EMAIL = r"^\s*([^@\s]+@[^@\s]+\.[^@\s]+)?\s*$"
CHECKOUT_ERRORS = (_E.INVALID_RESOURCE, _E.INVALID_AMOUNT, _E.RESOURCE_NOT_FOUND,
                   _E.PRODUCT_NOT_FOUND, *COUPON_ERRORS, _E.STRIPE_ERROR)


class _CheckoutOptions(_Body):
    """What a product session and a cart checkout both take (spec 02)."""

    customer_email: str = Field("", alias="customerEmail", max_length=MAX_EMAIL_LENGTH,
                                json_schema_extra={"pattern": _EMAIL})
    metadata: StripeMetadata = Field(default_factory=dict)
    success_url: str = Field("", alias="successUrl", max_length=2048,
                             json_schema_extra={"pattern": _URL})
    cancel_url: str = Field("", alias="cancelUrl", max_length=2048,
                            json_schema_extra={"pattern": _URL})
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)


class StripeSessionRequest(_CheckoutOptions):
    resource: str = required_text(255)


class CartCheckoutItemRequest(_NestedBody):
    """A line names a catalog `resource` or a Stripe `priceId` (at least one)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["resource"], "properties": {"resource": {"pattern": NOT_BLANK}}},
        {"required": ["priceId"], "properties": {"priceId": {"pattern": NOT_BLANK}}}]})
    price_id: str = Field("", alias="priceId", max_length=255)
    resource: str = Field("", max_length=255)
    quantity: Integer = quantity()
    description: str = Field("", max_length=500)
    metadata: StripeMetadata = Field(default_factory=dict)


class CartCheckoutRequest(_CheckoutOptions):
    model_config = resolver_required("items")
    items: list[CartCheckoutItemRequest] = Field(default_factory=list,
                                                 json_schema_extra=CART_ITEMS)


class SessionQuery(_Body):
    session_id: str = required_text(MAX_SESSION_ID, pattern=r"^\s*[A-Za-z0-9_]+\s*$")


class RedirectQuery(_Body):
    session_id: str = Field("", description="Shown when it is a Checkout session id")


class StripeEvent(_Body):
    """A Stripe event, read as the raw bytes its signature covers."""

    model_config = ConfigDict(extra="allow")
    id: str
    type: str


class StripeSessionResponse(BaseModel):
    sessionId: str
    url: str


class CartCheckoutResponse(BaseModel):
    sessionId: str
    url: str
    totalItems: int


class StripeVerifyResponse(BaseModel):
    """Snake case on purpose (spec 02: compatibility with existing integrations)."""

    verified: bool
    session_id: str
    resource_id: str
    paid_at: str
    amount: str
    amount_cents: int
    currency: str
    customer: str
    metadata: StrMap


class WebhookAck(BaseModel):
    received: bool
    eventId: str
    duplicate: bool
    ignored: bool


class WebhookInfo(BaseModel):
    endpoint: str
    method: str
    signatureHeader: str
    events: list[str]


class RedirectPage(BaseModel):
    status: str
    sessionId: str | None = None
    paid: bool | None = None


def _session(s: CheckoutSession) -> dict[str, Any]:
    return {"sessionId": s.session_id, "url": s.url}


def verification(tx: PaymentTransaction) -> dict[str, Any]:
    asset = find_asset(tx.asset)
    shown = Money(asset, tx.amount_atomic).major_str(2) if asset else str(tx.amount_atomic)
    meta = dict(tx.metadata)
    return {"verified": True, "session_id": meta.get("stripe_session_id", ""),
            "resource_id": tx.resource_id, "paid_at": to_rfc3339(tx.created_at),
            "amount": shown, "amount_cents": tx.amount_atomic,
            "currency": meta.get("currency", tx.asset.lower()), "customer": tx.wallet,
            "metadata": meta}


@endpoint("Create a Stripe Checkout session for one product (idempotent)", tag="stripe",
          request=StripeSessionRequest, headers=(IDEMPOTENCY_KEY,),
          responses={200: StripeSessionResponse}, errors=CHECKOUT_ERRORS)
async def create_session(request: Request) -> Response:
    body = await parse_body(request, StripeSessionRequest)
    session = await services(request).checkout.create_session(tenant(request), SessionInput(
        resource_id=body.resource.strip(), customer_email=body.customer_email,
        metadata=body.metadata, success_url=body.success_url, cancel_url=body.cancel_url,
        coupon_code=body.coupon_code))
    return spec_json(_session(session), headers=NO_STORE)


@endpoint("Create a Stripe Checkout session for a cart (idempotent)", tag="stripe",
          request=CartCheckoutRequest, headers=(IDEMPOTENCY_KEY,),
          responses={200: CartCheckoutResponse},
          errors=(*CHECKOUT_ERRORS, _E.EMPTY_CART, _E.INVALID_CART_ITEM))
async def cart_checkout(request: Request) -> Response:
    body = await parse_body(request, CartCheckoutRequest)
    session = await services(request).checkout.create_cart_session(
        tenant(request), CartCheckoutInput(
            items=[CartCheckoutItem(resource_id=i.resource.strip(), price_id=i.price_id.strip(),
                                    quantity=i.quantity, description=i.description,
                                    metadata=i.metadata) for i in body.items],
            customer_email=body.customer_email, metadata=body.metadata,
            coupon_code=body.coupon_code, success_url=body.success_url,
            cancel_url=body.cancel_url))
    return spec_json({**_session(session), "totalItems": session.total_items},
                     headers=NO_STORE)


@endpoint("Verify a paid Stripe Checkout session (from the verified webhook's record)",
          tag="stripe", query=SessionQuery, responses={200: StripeVerifyResponse},
          errors=(_E.SESSION_NOT_FOUND,))
async def verify_session(request: Request) -> Response:
    tx = await services(request).checkout.verify(
        tenant(request), request.query_params.get("session_id", ""))
    return spec_json(verification(tx), headers=NO_STORE)


@endpoint("Stripe webhook: signed events (Stripe-Signature), processed once", tag="stripe",
          headers=(Header("Stripe-Signature", "t=<unix>,v1=<hex HMAC-SHA256>; without a "
                          "valid one the answer is 402 invalid_signature", max_length=4096),),
          responses={200: WebhookAck}, request=StripeEvent,
          errors=(_E.INVALID_SIGNATURE, _E.STRIPE_ERROR))
async def webhook(request: Request) -> Response:
    payload = await read_body(request, MAX_EVENT_BYTES)
    outcome = await services(request).checkout.events.receive(
        payload, request_header(request, b"stripe-signature"))
    return spec_json({"received": True, "eventId": outcome.event_id,
                      "duplicate": outcome.duplicate, "ignored": not outcome.handled})


@endpoint("What the Stripe webhook endpoint expects", tag="stripe",
          responses={200: WebhookInfo})
async def webhook_info(request: Request) -> Response:
    return spec_json({"endpoint": request.url.path, "method": "POST",
                      "signatureHeader": "Stripe-Signature",
                      "events": [COMPLETED, ASYNC_SUCCEEDED]})


def _wants_json(request: Request) -> bool:
    accept = (request_header(request, b"accept") or "").lower()
    return "application/json" in accept and "text/html" not in accept


def _page(title: str, text: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
        f"<body><main><h1>{title}</h1><p>{text}</p></main></body></html>", headers=NO_STORE)


async def _paid(request: Request, session_id: str) -> bool:
    try:
        await services(request).checkout.verify(tenant(request), session_id)
    except CedrosError:
        return False
    return True


@endpoint("Checkout success redirect (HTML; JSON on Accept: application/json)",
          tag="stripe", responses={200: RedirectPage}, html=(200,), query=RedirectQuery)
async def success_page(request: Request) -> Response:
    raw = request.query_params.get("session_id", "").strip()
    try:
        session_id: str | None = check_session_id(raw) if raw else None
    except CedrosError:
        session_id = None
    paid = await _paid(request, session_id) if session_id else False
    if _wants_json(request):
        return spec_json({"status": "success", "sessionId": session_id, "paid": paid},
                         headers=NO_STORE)
    text = ("Your payment was received." if paid else
            "Thank you. Your payment is being confirmed.")
    if session_id:
        text += f" Reference: <code>{html.escape(session_id)}</code>"
    return _page("Payment complete", text)


@endpoint("Checkout cancel redirect (HTML; JSON on Accept: application/json)",
          tag="stripe", responses={200: RedirectPage}, html=(200,))
async def cancel_page(request: Request) -> Response:
    if _wants_json(request):
        return spec_json({"status": "cancelled"}, headers=NO_STORE)
    return _page("Payment cancelled", "No payment was taken. You can close this page.")


def _alias(fn: Callable[[Request], Coroutine[Any, Any, Response]]
           ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The same handler without its API doc: the unprefixed copy of a prefixed route is
    not listed twice in /openapi.json."""
    async def handler(request: Request) -> Response:
        return await fn(request)
    return handler


def stripe_routes(prefix: str) -> list[BaseRoute]:
    """The card routes: the API under the prefix, the Stripe-facing ones at the root too."""
    v1 = f"{prefix}/paywall/v1"
    routes: list[BaseRoute] = [
        Route(f"{v1}/stripe-session", create_session, methods=["POST"]),
        Route(f"{v1}/stripe-session/verify", verify_session, methods=["GET"]),
        Route(f"{v1}/cart/checkout", cart_checkout, methods=["POST"]),
    ]
    outside = (("/webhook/stripe", webhook, "POST"), ("/webhook/stripe", webhook_info, "GET"),
               ("/stripe/success", success_page, "GET"), ("/stripe/cancel", cancel_page, "GET"))
    for path, fn, method in outside:
        routes.append(Route(f"{prefix}{path}", fn, methods=[method]))
        if prefix:
            routes.append(Route(path, _alias(fn), methods=[method]))
    return routes
