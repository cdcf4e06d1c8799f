"""Subscription endpoints (spec 03): parse, one resolver call, render."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Subscription
from cedros_pay.core.periods import MAX_INTERVAL
from cedros_pay.resolvers.subscription_events import public_id
from cedros_pay.resolvers.subscription_proofs import LifecycleProof
from cedros_pay.resolvers.subscriptions import (
    PRORATIONS,
    Activation,
    StatusView,
    StripeSessionInput,
    SubscriptionQuote,
    Subscriptions,
)
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import COUPON_ERRORS, IDEMPOTENCY_KEY, Header, endpoint
from cedros_pay.rest.models import (
    BASE58_KEY,
    PaymentRequired,
    StrMap,
    _Body,
    integral,
    required_text,
)
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import spec_json

NO_STORE = {"Cache-Control": "no-store"}
# An x402 subscription's cancel/reactivate carries its wallet's signature or an admin's.
PROOF_HEADERS = (
    Header("X-Signer", "Base58 public key of the subscriber's wallet (or of an admin)",
           max_length=64),
    Header("X-Signature", "Ed25519 signature of the exact X-Message bytes", max_length=128),
    Header("X-Message", "`<action>:<subscriptionId>:<unix seconds>` (valid 300 s), or "
           "`admin:<nonce>` for an admin", max_length=512),
    Header("Authorization", "`Bearer <admin API key>`, instead of a signature", max_length=512))
_LIFECYCLE_HEADERS = (IDEMPOTENCY_KEY, *PROOF_HEADERS)
_E = ErrorCode
INTERVALS: list[JsonValue] = ["daily", "weekly", "monthly", "yearly", "custom"]
# `custom` needs intervalDays (core/periods.py); the words are case-insensitive.
_CUSTOM_NEEDS_DAYS: JsonDict = {"if": {"properties": {"interval": {"const": "custom"}},
                             "required": ["interval"]},
                      "then": {"required": ["intervalDays"]}}


def _interval() -> Any:
    return Field(max_length=16, json_schema_extra={"enum": INTERVALS})


PRORATION_CHOICES: list[JsonValue] = ["", *PRORATIONS]


IntervalDays = Annotated[int, Field(ge=1, le=MAX_INTERVAL), BeforeValidator(integral)]
TrialDays = Annotated[int, Field(ge=0, le=730), BeforeValidator(integral)]  # the resolver's


class SubscriptionQuoteRequest(_Body):
    model_config = ConfigDict(json_schema_extra=_CUSTOM_NEEDS_DAYS)
    resource: str = required_text(255)
    interval: str = _interval()
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)
    interval_days: IntervalDays | None = Field(None, alias="intervalDays")


class ActivateRequest(_Body):
    product_id: str = required_text(255, alias="productId")
    wallet: str = required_text(64, pattern=BASE58_KEY, wallet=True)
    payment_signature: str | None = Field(None, alias="paymentSignature", max_length=128)
    metadata: StrMap = Field(default_factory=dict)


class StripeSubscriptionRequest(_Body):
    model_config = ConfigDict(json_schema_extra=_CUSTOM_NEEDS_DAYS)
    resource: str = required_text(255)
    interval: str = _interval()
    interval_days: IntervalDays | None = Field(None, alias="intervalDays")
    trial_days: TrialDays | None = Field(None, alias="trialDays")
    customer_email: str = Field("", alias="customerEmail", max_length=254)
    metadata: StrMap = Field(default_factory=dict)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)
    success_url: str = Field("", alias="successUrl", max_length=2048)
    cancel_url: str = Field("", alias="cancelUrl", max_length=2048)


class CancelRequest(_Body):
    subscription_id: str = required_text(255, alias="subscriptionId")
    at_period_end: bool = Field(True, alias="atPeriodEnd")


class ReactivateRequest(_Body):
    subscription_id: str = required_text(255, alias="subscriptionId")


class ChangeRequest(_Body):
    subscription_id: str = required_text(255, alias="subscriptionId")
    new_resource: str = required_text(255, alias="newResource")
    proration_behavior: str = Field("", alias="prorationBehavior", max_length=32,
                                    json_schema_extra={"enum": PRORATION_CHOICES})


class PortalRequest(_Body):
    customer_id: str = required_text(255, alias="customerId", pattern=r"^\s*cus_")
    return_url: str = required_text(2048, alias="returnUrl", pattern=r"^\s*https?://")


class StatusQuery(_Body):
    user_id: str = required_text(255, alias="userId",
                                 description="A wallet (x402) or a Stripe customer id")
    resource: str = required_text(255)


class SubscriptionTerm(BaseModel):
    interval: str
    durationSeconds: int
    periodStart: str
    periodEnd: str
    intervalDays: int | None = None


class SubscriptionQuoteResponse(BaseModel):
    requirement: PaymentRequired
    subscription: SubscriptionTerm


class ActivationResponse(BaseModel):
    subscriptionId: str
    productId: str
    wallet: str
    status: str
    currentPeriodStart: str
    currentPeriodEnd: str
    billingPeriod: str
    billingInterval: int
    quote: PaymentRequired | None = None


class SessionCreated(BaseModel):
    sessionId: str
    url: str


class LifecycleResponse(BaseModel):
    success: bool
    subscriptionId: str
    status: str
    cancelAtPeriodEnd: bool
    currentPeriodEnd: str
    atPeriodEnd: bool | None = None


class ChangeResponse(BaseModel):
    success: bool
    subscriptionId: str
    previousResource: str
    newResource: str
    status: str
    currentPeriodEnd: str
    prorationBehavior: str


class PortalResponse(BaseModel):
    url: str


class SubscriptionStatusResponse(BaseModel):
    active: bool
    status: str
    expiresAt: str
    currentPeriodEnd: str
    interval: str
    cancelAtPeriodEnd: bool


def _subs(request: Request) -> Subscriptions:
    subs = services(request).subscriptions
    if subs is None:
        raise CedrosError(ErrorCode.NOT_FOUND, "subscriptions are not enabled on this server")
    return subs


def render_quote(q: SubscriptionQuote) -> dict[str, Any]:
    crypto = q.quote.crypto
    sub: dict[str, Any] = {"interval": q.term.word,
                           "durationSeconds": q.term.duration_seconds(q.period_start),
                           "periodStart": to_rfc3339(q.period_start),
                           "periodEnd": to_rfc3339(q.period_end)}
    if q.term.word == "custom":
        sub["intervalDays"] = q.term.interval
    return {"requirement": render.payment_required([crypto] if crypto else []),
            "subscription": sub}


def render_activation(a: Activation) -> dict[str, Any]:
    """Paid: the subscription as it now is. Unpaid: its present state (or `inactive` and
    the period a payment would buy) plus the `quote` to pay."""
    sub = a.subscription
    start, end = (sub.current_period_start, sub.current_period_end) if sub else (
        a.period_start, a.period_end)
    out: dict[str, Any] = {
        "subscriptionId": public_id(sub) if sub else "", "productId": a.product.id,
        "wallet": a.wallet, "status": sub.status.value if sub else "inactive",
        "currentPeriodStart": to_rfc3339(start), "currentPeriodEnd": to_rfc3339(end),
        "billingPeriod": a.term.period.value, "billingInterval": a.term.interval,
    }
    if a.quote is not None and a.quote.crypto is not None:
        out["quote"] = render.payment_required([a.quote.crypto])
    return out


def render_status(v: StatusView) -> dict[str, Any]:
    end = to_rfc3339(v.subscription.current_period_end)
    return {"active": v.active, "status": v.subscription.status.value, "expiresAt": end,
            "currentPeriodEnd": end, "interval": v.interval,
            "cancelAtPeriodEnd": v.subscription.cancel_at_period_end}


def _lifecycle(sub: Subscription) -> dict[str, Any]:
    return {"success": True, "subscriptionId": public_id(sub), "status": sub.status.value,
            "cancelAtPeriodEnd": sub.cancel_at_period_end,
            "currentPeriodEnd": to_rfc3339(sub.current_period_end)}


@endpoint("Subscription status of a wallet or Stripe customer", tag="subscriptions",
          query=StatusQuery, responses={200: SubscriptionStatusResponse},
          errors=(_E.NOT_FOUND, _E.RESOURCE_NOT_FOUND))
async def status(request: Request) -> Response:
    q = request.query_params
    view = await _subs(request).status(tenant(request), q.get("userId", ""),
                                       q.get("resource", ""))
    return spec_json(render_status(view), headers=NO_STORE)


@endpoint("Quote one x402 subscription period (answers 402)", tag="subscriptions",
          request=SubscriptionQuoteRequest, responses={402: SubscriptionQuoteResponse},
          errors=(_E.NOT_FOUND, _E.RESOURCE_NOT_FOUND, _E.INVALID_RESOURCE, *COUPON_ERRORS))
async def quote(request: Request) -> Response:
    body = await parse_body(request, SubscriptionQuoteRequest)
    q = await _subs(request).quote(tenant(request), body.resource, body.interval,
                                   body.interval_days, body.coupon_code)
    return spec_json(render_quote(q), status=402, headers=NO_STORE)


@endpoint("Activate or extend an x402 subscription with a recorded payment",
          tag="subscriptions", request=ActivateRequest, headers=(IDEMPOTENCY_KEY,),
          responses={200: ActivationResponse},
          errors=(_E.NOT_FOUND, _E.RESOURCE_NOT_FOUND, _E.INVALID_RESOURCE, _E.INVALID_WALLET,
                  _E.PAYMENT_ALREADY_USED, _E.TRANSACTION_NOT_FOUND, _E.AMOUNT_BELOW_MINIMUM,
                  _E.INVALID_RECIPIENT, _E.INVALID_SENDER, _E.DATABASE_ERROR),
          description="Without a qualifying payment: the present state and the `quote`.")
async def activate(request: Request) -> Response:
    body = await parse_body(request, ActivateRequest)
    a = await _subs(request).activate(tenant(request), body.product_id, body.wallet,
                                      body.payment_signature, body.metadata)
    return spec_json(render_activation(a), headers=NO_STORE)


@endpoint("Stripe Checkout Session in subscription mode", tag="subscriptions",
          request=StripeSubscriptionRequest, headers=(IDEMPOTENCY_KEY,),
          responses={200: SessionCreated},
          errors=(_E.NOT_FOUND, _E.RESOURCE_NOT_FOUND, _E.INVALID_RESOURCE, *COUPON_ERRORS,
                  _E.STRIPE_ERROR))
async def stripe_session(request: Request) -> Response:
    b = await parse_body(request, StripeSubscriptionRequest)
    created = await _subs(request).stripe_session(tenant(request), StripeSessionInput(
        resource=b.resource, interval=b.interval, interval_days=b.interval_days,
        trial_days=b.trial_days, customer_email=b.customer_email, metadata=b.metadata,
        coupon_code=b.coupon_code or "", success_url=b.success_url, cancel_url=b.cancel_url))
    return spec_json({"sessionId": created.id, "url": created.url}, headers=NO_STORE)


@endpoint("Cancel a subscription now or at its period end", tag="subscriptions",
          request=CancelRequest, headers=_LIFECYCLE_HEADERS, responses={200: LifecycleResponse},
          errors=(_E.NOT_FOUND, _E.UNAUTHORIZED, _E.FORBIDDEN, _E.STRIPE_ERROR),
          description="An x402 subscription needs its wallet's signature (X-Message "
                      "`cancel-subscription:<id>:<unix seconds>`, or `cancel-subscription-now:"
                      "...` when atPeriodEnd is false) or admin credentials; a Stripe one "
                      "is named by its `sub_...` id.")
async def cancel(request: Request) -> Response:
    body = await parse_body(request, CancelRequest)
    sub = await _subs(request).cancel(tenant(request), body.subscription_id, body.at_period_end,
                                      proof=LifecycleProof.of(request.headers))
    return spec_json({**_lifecycle(sub), "atPeriodEnd": body.at_period_end})


@endpoint("Undo a cancellation at period end", tag="subscriptions",
          request=ReactivateRequest, headers=_LIFECYCLE_HEADERS,
          responses={200: LifecycleResponse},
          errors=(_E.NOT_FOUND, _E.UNAUTHORIZED, _E.FORBIDDEN, _E.STRIPE_ERROR),
          description="An x402 subscription needs its wallet's signature (X-Message "
                      "`reactivate-subscription:<id>:<unix seconds>`) or admin credentials.")
async def reactivate(request: Request) -> Response:
    body = await parse_body(request, ReactivateRequest)
    sub = await _subs(request).reactivate(tenant(request), body.subscription_id,
                                          proof=LifecycleProof.of(request.headers))
    return spec_json(_lifecycle(sub))


@endpoint("Change a Stripe subscription's plan", tag="subscriptions", request=ChangeRequest,
          headers=(IDEMPOTENCY_KEY,), responses={200: ChangeResponse},
          errors=(_E.NOT_FOUND, _E.RESOURCE_NOT_FOUND, _E.INVALID_RESOURCE, _E.STRIPE_ERROR))
async def change(request: Request) -> Response:
    body = await parse_body(request, ChangeRequest)
    c = await _subs(request).change(tenant(request), body.subscription_id, body.new_resource,
                                    body.proration_behavior)
    return spec_json({"success": True, "subscriptionId": public_id(c.subscription),
                      "previousResource": c.previous_resource,
                      "newResource": c.subscription.product_id,
                      "status": c.subscription.status.value,
                      "currentPeriodEnd": to_rfc3339(c.subscription.current_period_end),
                      "prorationBehavior": c.proration_behavior})


@endpoint("Stripe billing portal URL", tag="subscriptions", request=PortalRequest,
          responses={200: PortalResponse}, errors=(_E.STRIPE_ERROR,))
async def portal(request: Request) -> Response:
    body = await parse_body(request, PortalRequest)
    url = await _subs(request).portal(body.customer_id, body.return_url)
    return spec_json({"url": url}, headers=NO_STORE)


def subscription_routes(prefix: str) -> list[BaseRoute]:
    base = f"{prefix}/paywall/v1/subscription"
    return [
        Route(f"{base}/status", status, methods=["GET"]),
        Route(f"{base}/quote", quote, methods=["POST"]),
        Route(f"{base}/x402/activate", activate, methods=["POST"]),
        Route(f"{base}/stripe-session", stripe_session, methods=["POST"]),
        Route(f"{base}/cancel", cancel, methods=["POST"]),
        Route(f"{base}/reactivate", reactivate, methods=["POST"]),
        Route(f"{base}/change", change, methods=["POST"]),
        Route(f"{base}/portal", portal, methods=["POST"]),
    ]
