"""The Stripe API through the official SDK: one `stripe.StripeClient`, one breaker.

Every call goes through the `stripe_api` circuit breaker (spec 12) with the SDK's own
retries inside it (timeouts, connection errors, 409 and 5xx are retried by the SDK, POSTs
under an idempotency key it generates), so the breaker sees one outcome per logical call.
Only a failure of Stripe itself (5xx, 429, no answer) counts against the breaker; a 4xx
means Stripe answered and the request was wrong. Every SDK error becomes a spec 15 code
(`stripe_error`, `invalid_signature`), never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stripe

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.circuit_breaker import CircuitBreaker

log = logging.getLogger("cedros_pay.stripe")

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.stripe.com"
SIGNATURE_TOLERANCE = 300  # seconds (spec 12)


@dataclass(frozen=True, slots=True)
class CheckoutLine:
    """One line item: a Stripe price by id, or an inline unit amount in cents."""

    quantity: int
    price_id: str = ""
    amount_cents: int = 0
    currency: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    lines: Sequence[CheckoutLine]
    success_url: str
    cancel_url: str
    metadata: Mapping[str, str]
    customer_email: str = ""
    coupon_id: str = ""  # a Stripe coupon applied to the whole session
    tax_rate_id: str = ""


@dataclass(frozen=True, slots=True)
class SubscriptionSessionRequest:
    price_id: str
    success_url: str
    cancel_url: str
    metadata: Mapping[str, str]
    trial_days: int = 0
    customer_email: str = ""
    coupon_id: str = ""


@dataclass(frozen=True, slots=True)
class CreatedSession:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class StripePrice:
    id: str
    unit_amount: int | None
    currency: str
    active: bool


@dataclass(frozen=True, slots=True)
class StripeRefund:
    """A created refund: Stripe's id and status (`succeeded`, `pending`, `failed`...)."""

    id: str
    status: str
    amount: int


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """A verified webhook event: its id, type and `data.object` as plain data."""

    id: str
    type: str
    object: dict[str, Any] = field(default_factory=dict)
    created: int = 0  # Unix seconds: orders events about one subscription


def _is_outage(exc: stripe.StripeError) -> bool:
    """Stripe did not answer, or answered that it failed: the breaker's business."""
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    status = exc.http_status
    return status is None or status >= 500


def _translated(exc: stripe.StripeError, action: str) -> CedrosError:
    details: dict[str, Any] = {"stripeError": type(exc).__name__}
    if exc.http_status is not None:
        details["status"] = exc.http_status
    if exc.code:
        details["stripeCode"] = exc.code
    param = getattr(exc, "param", None)
    if param:
        details["param"] = param
    return CedrosError(ErrorCode.STRIPE_ERROR, f"Stripe could not {action}", details)


def _params(lines: Sequence[CheckoutLine]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for line in lines:
        if line.price_id:
            items.append({"price": line.price_id, "quantity": line.quantity})
        else:
            items.append({"quantity": line.quantity, "price_data": {
                "currency": line.currency, "unit_amount": line.amount_cents,
                "product_data": {"name": line.name}}})
    return items


class StripeClient:
    """The SDK's client with our base URL, key, timeouts and breaker."""

    def __init__(self, *, api_key: str, breaker: CircuitBreaker,
                 api_base: str = DEFAULT_API_BASE, timeout: float = 10.0,
                 max_retries: int = 2) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._sdk = stripe.StripeClient(
            api_key, base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=max_retries, http_client=self._http)
        self._breaker = breaker

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, action: str, fn: Callable[[], Awaitable[T]]) -> T:
        generation = self._breaker.before()  # open: CircuitOpenError (stripe_error)
        try:
            result = await fn()
        except stripe.StripeError as exc:
            outage = _is_outage(exc)
            self._breaker.after(generation, success=not outage)
            log.warning("stripe call failed", extra={
                "action": action, "stripe_error": type(exc).__name__,
                "status": exc.http_status, "stripe_code": exc.code})
            raise _translated(exc, action) from None
        except BaseException:
            self._breaker.after(generation, success=False)
            raise
        self._breaker.after(generation, success=True)
        return result

    async def create_checkout_session(self, req: CheckoutRequest) -> CreatedSession:
        """POST /v1/checkout/sessions in payment mode."""
        params: dict[str, Any] = {
            "mode": "payment", "line_items": _params(req.lines),
            "success_url": req.success_url, "cancel_url": req.cancel_url,
            "metadata": dict(req.metadata),
        }
        if req.customer_email:
            params["customer_email"] = req.customer_email
        if req.coupon_id:
            params["discounts"] = [{"coupon": req.coupon_id}]
        if req.tax_rate_id:
            for item in params["line_items"]:
                item["tax_rates"] = [req.tax_rate_id]
        sessions = self._sdk.v1.checkout.sessions
        created = await self._call("create the checkout session",
                                   lambda: sessions.create_async(params))  # type: ignore[arg-type]
        return CreatedSession(id=created.id or "", url=created.url or "")

    async def retrieve_price(self, price_id: str) -> StripePrice:
        """GET /v1/prices/{id}: the amount behind a catalog's `stripe_price_id`."""
        prices = self._sdk.v1.prices
        price = await self._call("read the price", lambda: prices.retrieve_async(price_id))
        return StripePrice(id=price.id, unit_amount=price.unit_amount,
                           currency=price.currency, active=bool(price.active))

    async def create_coupon(self, *, amount_off: int, currency: str, name: str) -> str:
        """POST /v1/coupons: a one-time amount off a whole session (cart checkout)."""
        coupons = self._sdk.v1.coupons
        params: dict[str, Any] = {"amount_off": amount_off, "currency": currency,
                                  "duration": "once", "name": name[:40]}
        coupon = await self._call("create the coupon",
                                  lambda: coupons.create_async(params))  # type: ignore[arg-type]
        return coupon.id

    # --- subscriptions (issue 13) --------------------------------------------------------

    async def create_subscription_session(self, req: SubscriptionSessionRequest
                                          ) -> CreatedSession:
        """POST /v1/checkout/sessions in subscription mode; Stripe copies
        `subscription_data[metadata]` (not the session's metadata) onto the subscription."""
        sub_data: dict[str, Any] = {"metadata": dict(req.metadata)}
        if req.trial_days:
            sub_data["trial_period_days"] = req.trial_days
        params: dict[str, Any] = {
            "mode": "subscription", "line_items": [{"price": req.price_id, "quantity": 1}],
            "success_url": req.success_url, "cancel_url": req.cancel_url,
            "metadata": dict(req.metadata), "subscription_data": sub_data,
        }
        if req.customer_email:
            params["customer_email"] = req.customer_email
        if req.coupon_id:
            params["discounts"] = [{"coupon": req.coupon_id}]
        sessions = self._sdk.v1.checkout.sessions
        created = await self._call("create the subscription session",
                                   lambda: sessions.create_async(params))  # type: ignore[arg-type]
        return CreatedSession(id=created.id or "", url=created.url or "")

    async def retrieve_subscription(self, sub_id: str) -> dict[str, Any]:
        """GET /v1/subscriptions/{id} as plain data."""
        subs = self._sdk.v1.subscriptions
        sub = await self._call("read the subscription", lambda: subs.retrieve_async(sub_id))
        return sub.to_dict()

    async def update_subscription(self, sub_id: str, params: Mapping[str, Any]
                                  ) -> dict[str, Any]:
        """POST /v1/subscriptions/{id} (cancel_at_period_end, items, proration_behavior)."""
        subs = self._sdk.v1.subscriptions
        body = dict(params)
        sub = await self._call("update the subscription",
                               lambda: subs.update_async(sub_id, body))  # type: ignore[arg-type]
        return sub.to_dict()

    async def cancel_subscription(self, sub_id: str) -> dict[str, Any]:
        """DELETE /v1/subscriptions/{id}: cancelled now."""
        subs = self._sdk.v1.subscriptions
        sub = await self._call("cancel the subscription", lambda: subs.cancel_async(sub_id))
        return sub.to_dict()

    async def create_portal_session(self, customer_id: str, return_url: str) -> str:
        """POST /v1/billing_portal/sessions: the portal URL, verbatim."""
        portal = self._sdk.v1.billing_portal.sessions
        params: dict[str, Any] = {"customer": customer_id, "return_url": return_url}
        session = await self._call("open the billing portal",
                                   lambda: portal.create_async(params))  # type: ignore[arg-type]
        return str(session.url or "")
    async def create_refund(self, *, payment_intent: str, amount: int, idempotency_key: str,
                            metadata: Mapping[str, str]) -> StripeRefund:
        """POST /v1/refunds for `amount` cents of a payment intent. The caller's
        idempotency key (derived from its refund id) makes every retry, by the SDK or by
        an admin approving again, the same Stripe refund: never counted twice."""
        refunds = self._sdk.v1.refunds
        params: dict[str, Any] = {"payment_intent": payment_intent, "amount": amount,
                                  "metadata": dict(metadata)}
        refund = await self._call("create the refund", lambda: refunds.create_async(
            params, {"idempotency_key": idempotency_key}))  # type: ignore[arg-type]
        return StripeRefund(id=refund.id, status=str(refund.status or ""),
                            amount=int(refund.amount or 0))

    @staticmethod
    def construct_event(payload: bytes, signature: str | None, secret: str,
                        tolerance: int = SIGNATURE_TOLERANCE) -> StripeEvent:
        """Verify `Stripe-Signature` over the raw body, then parse it (spec 12): a bad,
        missing or stale signature is `invalid_signature`; nothing else is looked at first."""
        if not signature or not secret:
            raise CedrosError(ErrorCode.INVALID_SIGNATURE, "Stripe-Signature is missing"
                              if not signature else "webhook secret is not configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret, tolerance)
        except stripe.SignatureVerificationError:
            raise CedrosError(ErrorCode.INVALID_SIGNATURE,
                              "Stripe-Signature does not verify (forged or stale)") from None
        except (ValueError, TypeError, AttributeError, KeyError):
            # Signed, but not an event (not JSON, not an object): the SDK's parse failed.
            raise CedrosError(ErrorCode.INVALID_FIELD, "webhook body is not a Stripe event",
                              {"field": "body"}) from None
        doc = event.to_dict() if isinstance(event, stripe.StripeObject) else {}
        data = doc.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        return StripeEvent(id=str(doc.get("id") or ""), type=str(doc.get("type") or ""),
                           object=obj if isinstance(obj, dict) else {},
                           created=created if isinstance(created := doc.get("created"), int)
                           else 0)
