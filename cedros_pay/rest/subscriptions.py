"""Subscription endpoints (spec 03): parse, one resolver call, render."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Subscription
from cedros_pay.resolvers.subscription_events import public_id
from cedros_pay.resolvers.subscription_proofs import LifecycleProof
from cedros_pay.resolvers.subscriptions import (
    Activation,
    StatusView,
    StripeSessionInput,
    SubscriptionQuote,
    Subscriptions,
)
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import ErrorEnvelope, StrMap, _Body
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import spec_json

NO_STORE = {"Cache-Control": "no-store"}
# An x402 subscription's cancel/reactivate carries its wallet's signature or an admin's.
PROOF_HEADERS = ("X-Signer", "X-Signature", "X-Message", "Authorization")
_LIFECYCLE_HEADERS = ("Idempotency-Key", *PROOF_HEADERS)
_LIFECYCLE_REFUSALS: dict[int, Any] = {400: ErrorEnvelope, 401: ErrorEnvelope,
                                       403: ErrorEnvelope, 404: ErrorEnvelope}
_ID = Field("", max_length=255)


class SubscriptionQuoteRequest(_Body):
    resource: str = _ID
    interval: str = Field("", max_length=16)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)
    interval_days: int | None = Field(None, alias="intervalDays")


class ActivateRequest(_Body):
    product_id: str = Field("", alias="productId", max_length=255)
    wallet: str = Field("", max_length=64)
    payment_signature: str | None = Field(None, alias="paymentSignature", max_length=128)
    metadata: StrMap = Field(default_factory=dict)


class StripeSubscriptionRequest(_Body):
    resource: str = _ID
    interval: str = Field("", max_length=16)
    interval_days: int | None = Field(None, alias="intervalDays")
    trial_days: int | None = Field(None, alias="trialDays")
    customer_email: str = Field("", alias="customerEmail", max_length=254)
    metadata: StrMap = Field(default_factory=dict)
    coupon_code: str | None = Field(None, alias="couponCode", max_length=64)
    success_url: str = Field("", alias="successUrl", max_length=2048)
    cancel_url: str = Field("", alias="cancelUrl", max_length=2048)


class CancelRequest(_Body):
    subscription_id: str = Field("", alias="subscriptionId", max_length=255)
    at_period_end: bool = Field(True, alias="atPeriodEnd")


class ReactivateRequest(_Body):
    subscription_id: str = Field("", alias="subscriptionId", max_length=255)


class ChangeRequest(_Body):
    subscription_id: str = Field("", alias="subscriptionId", max_length=255)
    new_resource: str = Field("", alias="newResource", max_length=255)
    proration_behavior: str = Field("", alias="prorationBehavior", max_length=32)


class PortalRequest(_Body):
    customer_id: str = Field("", alias="customerId", max_length=255)
    return_url: str = Field("", alias="returnUrl", max_length=2048)


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
          responses={200: SubscriptionStatusResponse, 400: ErrorEnvelope, 404: ErrorEnvelope})
async def status(request: Request) -> Response:
    q = request.query_params
    view = await _subs(request).status(tenant(request), q.get("userId", ""),
                                       q.get("resource", ""))
    return spec_json(render_status(view), headers=NO_STORE)


@endpoint("Quote one x402 subscription period (answers 402)", tag="subscriptions",
          request=SubscriptionQuoteRequest, responses={400: ErrorEnvelope, 404: ErrorEnvelope})
async def quote(request: Request) -> Response:
    body = await parse_body(request, SubscriptionQuoteRequest)
    q = await _subs(request).quote(tenant(request), body.resource, body.interval,
                                   body.interval_days, body.coupon_code)
    return spec_json(render_quote(q), status=402, headers=NO_STORE)


@endpoint("Activate or extend an x402 subscription with a recorded payment",
          tag="subscriptions", request=ActivateRequest, headers=("Idempotency-Key",),
          responses={400: ErrorEnvelope, 404: ErrorEnvelope})
async def activate(request: Request) -> Response:
    body = await parse_body(request, ActivateRequest)
    a = await _subs(request).activate(tenant(request), body.product_id, body.wallet,
                                      body.payment_signature, body.metadata)
    return spec_json(render_activation(a), headers=NO_STORE)


@endpoint("Stripe Checkout Session in subscription mode", tag="subscriptions",
          request=StripeSubscriptionRequest, headers=("Idempotency-Key",),
          responses={400: ErrorEnvelope, 404: ErrorEnvelope, 502: ErrorEnvelope})
async def stripe_session(request: Request) -> Response:
    b = await parse_body(request, StripeSubscriptionRequest)
    created = await _subs(request).stripe_session(tenant(request), StripeSessionInput(
        resource=b.resource, interval=b.interval, interval_days=b.interval_days,
        trial_days=b.trial_days, customer_email=b.customer_email, metadata=b.metadata,
        coupon_code=b.coupon_code or "", success_url=b.success_url, cancel_url=b.cancel_url))
    return spec_json({"sessionId": created.id, "url": created.url}, headers=NO_STORE)


@endpoint("Cancel a subscription now or at its period end (x402: signed by its wallet, "
          "X-Message cancel-subscription[-now]:<subscriptionId>:<unix seconds>, or admin)",
          tag="subscriptions", request=CancelRequest, headers=_LIFECYCLE_HEADERS,
          responses=_LIFECYCLE_REFUSALS)
async def cancel(request: Request) -> Response:
    body = await parse_body(request, CancelRequest)
    sub = await _subs(request).cancel(tenant(request), body.subscription_id, body.at_period_end,
                                      proof=LifecycleProof.of(request.headers))
    return spec_json({**_lifecycle(sub), "atPeriodEnd": body.at_period_end})


@endpoint("Undo a cancellation at period end (x402: signed by its wallet, X-Message "
          "reactivate-subscription:<subscriptionId>:<unix seconds>, or admin)",
          tag="subscriptions", request=ReactivateRequest, headers=_LIFECYCLE_HEADERS,
          responses=_LIFECYCLE_REFUSALS)
async def reactivate(request: Request) -> Response:
    body = await parse_body(request, ReactivateRequest)
    sub = await _subs(request).reactivate(tenant(request), body.subscription_id,
                                          proof=LifecycleProof.of(request.headers))
    return spec_json(_lifecycle(sub))


@endpoint("Change a Stripe subscription's plan", tag="subscriptions", request=ChangeRequest,
          headers=("Idempotency-Key",),
          responses={400: ErrorEnvelope, 404: ErrorEnvelope, 502: ErrorEnvelope})
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
          responses={400: ErrorEnvelope, 502: ErrorEnvelope})
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
