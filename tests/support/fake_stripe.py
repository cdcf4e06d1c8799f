"""A local stand-in for the Stripe API, served over real HTTP for the official SDK.

The product reaches it through `stripe.api_base` (`CEDROS_STRIPE_API_BASE`), so the SDK's
own form encoding, headers, retries and error parsing are all exercised. What it does as
Stripe does (for the calls Cedros makes):

* requests are form-encoded with bracketed keys (`line_items[0][price_data][unit_amount]`)
  and authenticated with `Authorization: Bearer sk_...`;
* objects are Stripe-shaped (`checkout.session`, `price`, `coupon`, `customer`, `list`),
  errors are `{"error": {"type", "message", "param", "code"}}` with Stripe's statuses and a
  `Request-Id` header; `Idempotency-Key` replays the first response;
* it validates what Stripe validates for these calls (modes, line items, prices, metadata
  limits, coupons, the minimum charge), so a request Stripe would refuse is refused here.

Every request is recorded (`requests`). Failures are injected per call: `fail(...)` answers
the next N requests with an error status (500 by default), `stall(...)` delays them past
the client's timeout. `event(...)` and `sign(...)` make webhook deliveries signed with
Stripe's algorithm: `t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.process import free_port

API_VERSION = "2025-10-29.clover"
MIN_CHARGE = {"usd": 50, "eur": 50}
_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    authorization: str | None


@dataclass
class _Fault:
    status: int = 500
    times: int = 1
    delay: float = 0.0
    should_retry: bool | None = None


class StripeRefusal(Exception):
    def __init__(self, status: int, type_: str, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.param, self.code = (
            status, type_, message, param, code)


def _invalid(message: str, param: str | None = None, code: str = "parameter_invalid"
             ) -> StripeRefusal:
    return StripeRefusal(400, "invalid_request_error", message, param=param, code=code)


def _set(tree: dict[str, Any], parts: list[str], value: str) -> None:
    node: Any = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append({} if not last else None)
            if last:
                node[index] = value
            else:
                if not isinstance(node[index], (dict, list)):
                    node[index] = [] if parts[i + 1].isdigit() else {}
                node = node[index]
        else:
            if last:
                node[part] = value
            else:
                if part not in node:
                    node[part] = [] if parts[i + 1].isdigit() else {}
                node = node[part]


def decode_form(raw: str) -> dict[str, Any]:
    """Stripe's form encoding back to nested data: `a[b][0][c]=v` -> {"a": {"b": [{"c": v}]}}."""
    tree: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = [m.group(1) if m.group(1) is not None else m.group(2)
                 for m in _KEY.finditer(key)]
        if parts:
            _set(tree, parts, value)
    return tree


def _int(value: Any, param: str, *, minimum: int = 0) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise _invalid(f"Invalid integer: {value}", param)
    number = int(value)
    if number < minimum:
        raise _invalid(f"This value must be greater than or equal to {minimum}.", param)
    return number


def _new_id(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n // 2 + 1)[:n]


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class FakeStripe:
    api_key: str = "sk_test_fake"
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscription_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "succeeded"  # what a new refund's status is (test control)
    url: str = ""
    _faults: list[_Fault] = field(default_factory=list)
    _replays: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)

    # --- test controls -------------------------------------------------------------------

    def add_price(self, price_id: str, unit_amount: int, currency: str = "usd",
                  active: bool = True) -> dict[str, Any]:
        price = {"id": price_id, "object": "price", "active": active, "currency": currency,
                 "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
                 "type": "one_time", "livemode": False, "created": int(time.time()),
                 "product": _new_id("prod_", 14), "metadata": {}, "recurring": None}
        self.prices[price_id] = price
        return price

    def fail(self, status: int = 500, *, times: int = 1,
             should_retry: bool | None = None) -> None:
        """Answer the next `times` requests with `status` (Stripe's api_error body)."""
        self._faults.append(_Fault(status=status, times=times, should_retry=should_retry))

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` requests for `seconds` (the client times out first)."""
        self._faults.append(_Fault(status=0, times=times, delay=seconds))

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or r.path == path)]

    def posts(self, path: str) -> list[Recorded]:
        return self.calls("POST", path)

    def complete(self, session_id: str, *, email: str = "buyer@example.com",
                 customer: str | None = None, payment_status: str = "paid") -> dict[str, Any]:
        """The session as Stripe shows it once the customer paid (what the event carries)."""
        s = self.sessions[session_id]
        s.update({
            "status": "complete", "payment_status": payment_status,
            "payment_intent": _new_id("pi_", 24),
            "customer": customer,
            "customer_details": {"email": s.get("customer_email") or email, "name": None,
                                 "phone": None, "address": None, "tax_exempt": "none",
                                 "tax_ids": []},
        })
        return json.loads(json.dumps(s))

    def start_subscription(self, session_id: str, *, period_days: int = 30,
                           status: str = "active") -> dict[str, Any]:
        """The customer completes a subscription-mode session: Stripe makes the customer and
        the subscription (metadata from `subscription_data[metadata]`, as Stripe copies it)
        and the session points at both. Returns the session as the event carries it."""
        s = self.sessions[session_id]
        price = self.line_items[session_id][0]["price"]
        now = int(time.time())
        customer = _new_id("cus_", 14)
        sub_id = _new_id("sub_", 24)
        data = self.subscription_data.get(session_id) or {}
        self.subscriptions[sub_id] = {
            "id": sub_id, "object": "subscription", "customer": customer, "status": status,
            "cancel_at_period_end": False, "canceled_at": None, "created": now,
            "current_period_start": now, "current_period_end": now + period_days * 86400,
            "metadata": dict(data.get("metadata") or {}), "livemode": False,
            "items": {"object": "list", "has_more": False, "data": [{
                "id": _new_id("si_", 14), "object": "subscription_item", "price": price,
                "quantity": 1, "current_period_start": now,
                "current_period_end": now + period_days * 86400}]},
        }
        s.update({"status": "complete", "payment_status": "paid", "customer": customer,
                  "subscription": sub_id})
        return json.loads(json.dumps(s))

    def invoice(self, sub_id: str, start: int, end: int, *, paid: bool = True
                ) -> dict[str, Any]:
        """An invoice for the subscription's next period (what invoice.* events carry)."""
        sub = self.subscriptions[sub_id]
        return {"id": _new_id("in_", 24), "object": "invoice", "customer": sub["customer"],
                "status": "paid" if paid else "open", "subscription": sub_id,
                "parent": {"type": "subscription_details", "subscription_details": {
                    "subscription": sub_id, "metadata": sub["metadata"]}},
                "lines": {"object": "list", "has_more": False, "data": [{
                    "id": _new_id("il_", 24), "object": "line_item",
                    "period": {"start": start, "end": end}}]}}

    @staticmethod
    def event(type_: str, obj: dict[str, Any], *, event_id: str | None = None,
              created: int | None = None) -> bytes:
        """A webhook body: a Stripe `event` wrapping `obj`."""
        return json.dumps({
            "id": event_id or _new_id("evt_", 24), "object": "event",
            "api_version": API_VERSION, "created": created or int(time.time()),
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_,
        }).encode()

    # --- the HTTP side ---------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/checkout/sessions", self._endpoint, methods=["GET", "POST"]),
            Route("/v1/checkout/sessions/{sid}", self._endpoint, methods=["GET"]),
            Route("/v1/checkout/sessions/{sid}/line_items", self._endpoint, methods=["GET"]),
            Route("/v1/prices/{pid}", self._endpoint, methods=["GET"]),
            Route("/v1/coupons", self._endpoint, methods=["POST"]),
            Route("/v1/customers", self._endpoint, methods=["GET", "POST"]),
            Route("/v1/customers/{cid}", self._endpoint, methods=["GET"]),
            Route("/{rest:path}", self._endpoint, methods=["GET", "POST", "DELETE"]),
        ])

    async def _endpoint(self, request: Request) -> Response:
        raw = (await request.body()).decode() if request.method == "POST" else \
            request.url.query
        params = decode_form(raw)
        key = request.headers.get("idempotency-key")
        self.requests.append(Recorded(request.method, request.url.path, params, key,
                                      request.headers.get("authorization")))
        headers = {"Request-Id": _new_id("req_", 14), "Stripe-Version": API_VERSION}
        if self._faults:
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                if fault.should_retry is not None:
                    headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
                return JSONResponse({"error": {
                    "type": "api_error", "message": "An unknown error occurred (injected)."}},
                    fault.status, headers=headers)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {
                "type": "invalid_request_error",
                "message": "Invalid API Key provided."}}, 401, headers=headers)
        replay_key = f"{request.method}:{key}" if key and request.method == "POST" else None
        if replay_key and replay_key in self._replays:
            first_raw, status, body = self._replays[replay_key]
            if first_raw != raw:
                return JSONResponse({"error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                               "parameters they were first used with."}}, 400, headers=headers)
            return Response(body, status, headers={**headers, "Idempotent-Replayed": "true"},
                            media_type="application/json")
        try:
            result = self._route(request.method, request.url.path, params)
            status = 200
            body = json.dumps(result).encode()
        except StripeRefusal as refusal:
            status = refusal.status
            error: dict[str, Any] = {"type": refusal.type, "message": refusal.message}
            if refusal.param:
                error["param"] = refusal.param
            if refusal.code:
                error["code"] = refusal.code
            body = json.dumps({"error": error}).encode()
        if replay_key:
            self._replays[replay_key] = (raw, status, body)
        return Response(body, status, headers=headers, media_type="application/json")

    def _route(self, method: str, path: str, p: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match (method, parts):
            case ("POST", ["v1", "checkout", "sessions"]):
                return self._create_session(p)
            case ("GET", ["v1", "checkout", "sessions", sid]):
                return self._get(self.sessions, sid, "checkout.session")
            case ("GET", ["v1", "checkout", "sessions", sid, "line_items"]):
                self._get(self.sessions, sid, "checkout.session")
                data = self.line_items.get(sid, [])
                return {"object": "list", "data": data, "has_more": False, "url": path}
            case ("GET", ["v1", "prices", pid]):
                return self._get(self.prices, pid, "price")
            case ("POST", ["v1", "coupons"]):
                return self._create_coupon(p)
            case ("POST", ["v1", "customers"]):
                return self._create_customer(p)
            case ("POST", ["v1", "refunds"]):
                return self._create_refund(p)
            case ("GET", ["v1", "customers", cid]):
                return self._get(self.customers, cid, "customer")
            case ("GET", ["v1", "subscriptions", sub]):
                return self._get(self.subscriptions, sub, "subscription")
            case ("POST", ["v1", "subscriptions", sub]):
                return self._update_subscription(self._get(self.subscriptions, sub,
                                                           "subscription"), p)
            case ("DELETE", ["v1", "subscriptions", sub]):
                found = self._get(self.subscriptions, sub, "subscription")
                found.update({"status": "canceled", "canceled_at": int(time.time())})
                return found
            case ("POST", ["v1", "billing_portal", "sessions"]):
                customer = p.get("customer")
                if not customer:
                    raise _invalid("Missing required param: customer.", "customer",
                                   "parameter_missing")
                bps = _new_id("bps_", 24)
                return {"id": bps, "object": "billing_portal.session", "customer": customer,
                        "return_url": p.get("return_url"),
                        "url": f"https://billing.stripe.com/p/session/{bps}"}
            case ("GET", ["v1", "customers"]):
                email = p.get("email")
                data = [c for c in self.customers.values() if email in (None, c["email"])]
                return {"object": "list", "data": data, "has_more": False, "url": path}
        raise StripeRefusal(404, "invalid_request_error",
                            f"Unrecognized request URL ({method}: {path}).")

    @staticmethod
    def _get(table: dict[str, dict[str, Any]], oid: str, kind: str) -> dict[str, Any]:
        if oid not in table:
            raise _invalid(f"No such {kind.split('.')[-1]}: '{oid}'", "id", "resource_missing")
        return table[oid]

    @staticmethod
    def _metadata(p: dict[str, Any]) -> dict[str, str]:
        metadata = p.get("metadata", {})
        if metadata == "":
            return {}
        if not isinstance(metadata, dict):
            raise _invalid("Invalid hash", "metadata")
        if len(metadata) > 50:
            raise _invalid("You can specify up to 50 keys.", "metadata")
        for k, v in metadata.items():
            if len(k) > 40:
                raise _invalid("Keys can be at most 40 characters.", f"metadata[{k}]")
            if not isinstance(v, str) or len(v) > 500:
                raise _invalid("Values can be at most 500 characters.", f"metadata[{k}]")
        return dict(metadata)

    def _create_refund(self, p: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/refunds against a paid session's payment intent, never past its total."""
        intent = p.get("payment_intent")
        paid = [s for s in self.sessions.values() if s.get("payment_intent") == intent]
        if not intent or not paid:
            raise _invalid(f"No such payment_intent: '{intent}'", "payment_intent",
                           "resource_missing")
        total = int(paid[0].get("amount_total") or 0)
        refunded = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == intent and r["status"] != "failed")
        amount = _int(p.get("amount", total - refunded), "amount", minimum=1)
        if refunded + amount > total:
            raise _invalid(f"Refund amount ({amount}) is greater than unrefunded amount on "
                           "charge", "amount", "amount_too_large")
        refund = {"id": _new_id("re_", 24), "object": "refund", "amount": amount,
                  "currency": paid[0].get("currency", "usd"), "payment_intent": intent,
                  "charge": _new_id("ch_", 24), "status": self.refund_status,
                  "metadata": self._metadata(p), "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        return refund

    def charge_refunded(self, refund_id: str) -> dict[str, Any]:
        """The charge as a `charge.refunded` event carries it, for one of our refunds."""
        refund = self.refunds[refund_id]
        refund["status"] = "succeeded"
        return {"id": refund["charge"], "object": "charge", "refunded": True,
                "payment_intent": refund["payment_intent"], "amount_refunded": refund["amount"],
                "refunds": {"object": "list", "data": [refund], "has_more": False}}

    def _create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = p.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise _invalid("Invalid mode: must be one of payment, setup, or subscription",
                           "mode", "parameter_missing" if mode is None else "parameter_invalid")
        items = p.get("line_items")
        if mode != "setup" and (not isinstance(items, list) or not items):
            raise _invalid("line_items is required in payment mode", "line_items",
                           "parameter_missing")
        for name in ("success_url", "cancel_url"):
            url = p.get(name)
            if url is not None and not re.match(r"https?://[^\s/]+", str(url)):
                raise _invalid("Not a valid URL", name, "url_invalid")
        email = p.get("customer_email")
        if email is not None and not _EMAIL.fullmatch(str(email)):
            raise _invalid("Invalid email address: " + str(email), "customer_email",
                           "email_invalid")
        metadata = self._metadata(p)
        lines: list[dict[str, Any]] = []
        currency: str | None = None
        subtotal = 0
        for i, item in enumerate(items or []):
            where = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise _invalid("Invalid object", where)
            quantity = _int(item.get("quantity"), f"{where}[quantity]", minimum=1)
            if "price" in item and "price_data" in item:
                raise _invalid("You may only specify one of these parameters: price, "
                               "price_data.", where)
            if "price" in item:
                price = self.prices.get(item["price"])
                if price is None:
                    raise _invalid(f"No such price: '{item['price']}'", f"{where}[price]",
                                   "resource_missing")
                if not price["active"]:
                    raise _invalid("The price specified is inactive.", f"{where}[price]")
                unit, line_currency = price["unit_amount"], price["currency"]
            elif isinstance(item.get("price_data"), dict):
                data = item["price_data"]
                line_currency = str(data.get("currency", ""))
                if not re.fullmatch(r"[a-z]{3}", line_currency):
                    raise _invalid("Invalid currency", f"{where}[price_data][currency]")
                unit = _int(data.get("unit_amount"), f"{where}[price_data][unit_amount]")
                product = data.get("product_data")
                if not data.get("product") and not (isinstance(product, dict)
                                                    and product.get("name")):
                    raise _invalid("Missing required param: "
                                   f"{where}[price_data][product_data][name].",
                                   f"{where}[price_data][product_data][name]",
                                   "parameter_missing")
                price = {"id": _new_id("price_", 24), "object": "price", "unit_amount": unit,
                         "currency": line_currency, "active": False, "type": "one_time"}
            else:
                raise _invalid("Each line item needs a price or price_data.", where,
                               "parameter_missing")
            if currency not in (None, line_currency):
                raise _invalid("All line items must use the same currency.", "line_items")
            currency = line_currency
            subtotal += unit * quantity
            lines.append({"id": _new_id("li_", 24), "object": "item",
                          "amount_subtotal": unit * quantity, "amount_total": unit * quantity,
                          "currency": line_currency, "quantity": quantity, "price": price,
                          "description": ((item.get("price_data") or {}).get("product_data")
                                          or {}).get("name", "")})
        discount = 0
        discounts = p.get("discounts") or []
        for i, entry in enumerate(discounts if isinstance(discounts, list) else []):
            coupon = self.coupons.get((entry or {}).get("coupon", ""))
            if coupon is None:
                raise _invalid(f"No such coupon: '{(entry or {}).get('coupon')}'",
                               f"discounts[{i}][coupon]", "resource_missing")
            if coupon.get("amount_off") is not None:
                if coupon["currency"] != currency:
                    raise _invalid("The coupon's currency does not match the session's.",
                                   f"discounts[{i}][coupon]")
                discount += coupon["amount_off"]
            else:
                discount += subtotal * int(float(coupon["percent_off"])) // 100
        total = max(0, subtotal - discount)
        if mode == "payment" and total < MIN_CHARGE.get(currency or "usd", 50):
            raise _invalid("The Checkout Session's total amount due must add up to at least "
                           f"{MIN_CHARGE.get(currency or 'usd', 50)} cents", None,
                           "amount_too_small")
        sid = "cs_test_" + secrets.token_hex(29)
        session = {
            "id": sid, "object": "checkout.session", "mode": mode, "status": "open",
            "payment_status": "unpaid", "livemode": False, "created": int(time.time()),
            "expires_at": int(time.time()) + 24 * 3600, "currency": currency,
            "amount_subtotal": subtotal, "amount_total": total,
            "total_details": {"amount_discount": discount, "amount_shipping": 0,
                              "amount_tax": 0},
            "customer": None, "customer_email": email, "customer_details": None,
            "metadata": metadata, "payment_intent": None, "success_url": p.get("success_url"),
            "cancel_url": p.get("cancel_url"), "url": f"https://checkout.stripe.com/c/pay/{sid}",
            "discounts": [{"coupon": d.get("coupon")} for d in discounts] if isinstance(
                discounts, list) else [],
        }
        self.sessions[sid] = session
        self.line_items[sid] = lines
        if mode == "subscription" and isinstance(p.get("subscription_data"), dict):
            self.subscription_data[sid] = p["subscription_data"]
        return session

    def _update_subscription(self, sub: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        if sub["status"] == "canceled":
            raise _invalid("A canceled subscription can only update its cancellation_details "
                           "and metadata.", None)
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
        items = p.get("items")
        if isinstance(items, list):
            for i, item in enumerate(items):
                known = {it["id"]: it for it in sub["items"]["data"]}
                target = known.get((item or {}).get("id", ""))
                if target is None:
                    raise _invalid("No such subscription item", f"items[{i}][id]",
                                   "resource_missing")
                price = self.prices.get(item.get("price", ""))
                if price is None:
                    raise _invalid(f"No such price: '{item.get('price')}'",
                                   f"items[{i}][price]", "resource_missing")
                target["price"] = price
        behaviour = p.get("proration_behavior")
        if behaviour not in (None, "create_prorations", "none", "always_invoice"):
            raise _invalid("Invalid proration_behavior", "proration_behavior")
        return sub

    def _create_coupon(self, p: dict[str, Any]) -> dict[str, Any]:
        amount_off = p.get("amount_off")
        percent_off = p.get("percent_off")
        if (amount_off is None) == (percent_off is None):
            raise _invalid("You must pass exactly one of amount_off or percent_off.",
                           "amount_off")
        coupon: dict[str, Any] = {
            "id": p.get("id") or secrets.token_hex(4), "object": "coupon",
            "duration": p.get("duration", "once"), "name": p.get("name"),
            "amount_off": None, "percent_off": None, "currency": None, "valid": True,
            "livemode": False, "created": int(time.time()), "metadata": self._metadata(p),
            "times_redeemed": 0}
        if amount_off is not None:
            coupon["amount_off"] = _int(amount_off, "amount_off", minimum=1)
            currency = p.get("currency")
            if not currency or not re.fullmatch(r"[a-z]{3}", str(currency)):
                raise _invalid("currency is required with amount_off", "currency",
                               "parameter_missing")
            coupon["currency"] = currency
        else:
            coupon["percent_off"] = float(str(percent_off))
        self.coupons[coupon["id"]] = coupon
        return coupon

    def _create_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        customer = {"id": _new_id("cus_", 14), "object": "customer",
                    "email": p.get("email"), "name": p.get("name"),
                    "metadata": self._metadata(p), "livemode": False,
                    "created": int(time.time())}
        self.customers[customer["id"]] = customer
        return customer


@asynccontextmanager
async def running_fake_stripe(api_key: str = "sk_test_fake") -> AsyncIterator[FakeStripe]:
    """The fake on a free 127.0.0.1 port, on the running loop, for the block's duration."""
    fake = FakeStripe(api_key=api_key)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        fake.app(), host="127.0.0.1", port=port, log_config=None, lifespan="off",
        access_log=False, timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
