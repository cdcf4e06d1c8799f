"""x402 settlement over HTTP: POST /paywall/v1/verify, the advertised resource endpoint
`/paywall/{id}`, and GET /paywall/v1/x402-transaction/verify (specs 02, 16).

Three protocol versions meet here. Every 402 carries the Cedros (v0) body unchanged plus a
PAYMENT-REQUIRED header (x402 v2); the client repeats the same request with X-PAYMENT
(v0 or v1) or PAYMENT-SIGNATURE (v2), and the reply header follows the version it paid with.
`settle_or_offer` is that exchange for every endpoint that sells a resource (the quote
endpoint's retry and `require_payment` too); `exchange` is its paid half.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import ErrorCode
from cedros_pay.resolvers.payments import AccessGrant, Offer, Payments, Refused, Settled
from cedros_pay.rest import render
from cedros_pay.rest.context import request_header, request_url, services, tenant
from cedros_pay.rest.endpoint import PAYMENT_ERRORS, Header, endpoint
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.models import (
    AccessGrantResponse,
    PaymentRequired,
    ResourceQuery,
    SubscriberGrantResponse,
    TransactionQuery,
    TransactionVerifyResponse,
)
from cedros_pay.rest.responses import SpecJSON, spec_json
from cedros_pay.x402 import http

PAYMENT_HEADERS = (
    Header(http.X_PAYMENT, "base64 JSON PaymentPayload, x402Version 0 (Cedros) or 1",
           max_length=http.MAX_HEADER_BYTES),
    Header(http.PAYMENT_SIGNATURE, "base64 JSON PaymentPayload, x402Version 2",
           max_length=http.MAX_HEADER_BYTES))
# A 402 carries the offer header; a refusal carries the settlement header of the version
# paid with; a grant carries its settlement header.
SUBSCRIBER_HEADERS = (
    Header("X-Signer", "A subscriber's wallet (base58): with X-Signature and X-Message, "
           "a live subscription passes without paying", max_length=64),
    Header("X-Signature", "Base64 Ed25519 signature of X-Message", max_length=128),
    Header("X-Message", "The signed message", max_length=256))
PAID_HEADERS = (http.X_PAYMENT_RESPONSE, http.PAYMENT_RESPONSE)
PAYMENT_RESPONSE_HEADERS = {200: PAID_HEADERS, 402: (http.PAYMENT_REQUIRED, *PAID_HEADERS),
                            400: PAID_HEADERS, 404: PAID_HEADERS, 409: PAID_HEADERS}
EXPOSE = {"Access-Control-Expose-Headers": http.EXPOSED_HEADERS}
NO_STORE = {"Cache-Control": "no-store"}
_RAW_402_HEADERS = [(k.lower().encode(), v.encode()) for k, v in {**NO_STORE, **EXPOSE}.items()]


def has_payment(request: Request) -> bool:
    """A non-empty payment header of any protocol version (on every 402 path)."""
    return bool(request_header(request, b"x-payment")
                or request_header(request, b"payment-signature"))


def payment_required(offer: Offer) -> Response:
    """402: the v0 body for the Cedros UI, PAYMENT-REQUIRED for official x402 clients."""
    crypto = offer.quote.crypto
    return SpecJSON(render.payment_required([crypto] if crypto else []), 402, raw_headers=[
        (b"payment-required", http.encode_payment_required(offer.required).encode()),
        *_RAW_402_HEADERS])


async def settle_or_offer(request: Request, payments: Payments, tenant_id: str,
                          resource_id: str, coupon_code: str | None) -> Settled | Response:
    """The x402 exchange for one resource: without a payment header, the 402 with its
    offer; with one, the settled payment or the finished refusal."""
    if has_payment(request):
        return await exchange(request, payments, tenant_id, resource_id, coupon_code)
    return payment_required(await payments.offer(tenant_id, resource_id, coupon_code,
                                                 request_url(request)))


async def exchange(request: Request, payments: Payments, tenant_id: str,
                   resource_id: str | None, coupon_code: str | None) -> Settled | Response:
    """Settle the request's payment header; a refusal comes back as the finished error
    response, carrying the settlement header of the version the client used."""
    headers = request.headers
    outcome = await payments.exchange(
        tenant_id, x_payment=headers.get(http.X_PAYMENT),
        payment_signature=headers.get(http.PAYMENT_SIGNATURE), resource_id=resource_id,
        coupon_code=coupon_code, url=request_url(request))
    if isinstance(outcome, Refused):
        return refusal(outcome)
    return outcome


def refusal(refused: Refused) -> Response:
    """A refused payment: the spec error, the settlement header (`success: false`) of the
    version the client paid with, and on a 402 the offer to pay again against."""
    response = render_error(refused.error)
    name, value = http.settlement_header(refused.response)
    response.headers[name] = value
    response.headers.update({**EXPOSE, **NO_STORE})
    if refused.offer is not None:
        response.headers[http.PAYMENT_REQUIRED] = http.encode_payment_required(refused.offer)
    return response


def settled_headers(settled: Settled) -> dict[str, str]:
    """The success header for the version paid with."""
    name, value = http.settlement_header(settled.response)
    return {name: value, **EXPOSE, **NO_STORE}


def granted(settled: Settled, *, timings: bool = True) -> Response:
    """200 with the access grant and its settlement header."""
    grant: AccessGrant = settled.grant
    headers = settled_headers(settled)
    if timings and grant.timings:  # W3C Server-Timing: lets operators (and bench/) see it
        headers["Server-Timing"] = ", ".join(f"{name};dur={ms:.3f}"
                                             for name, ms in grant.timings)
    return spec_json(render.access_grant(grant), headers=headers)


@endpoint("Verify and settle an x402 payment (X-PAYMENT header)", tag="paywall",
          headers=PAYMENT_HEADERS, responses={200: AccessGrantResponse},
          errors=PAYMENT_ERRORS, response_headers=PAYMENT_RESPONSE_HEADERS,
          description="Without a payment header the answer is 402 invalid_payment_proof.")
async def verify(request: Request) -> Response:
    outcome = await exchange(request, services(request).payments, tenant(request), None, None)
    return outcome if isinstance(outcome, Response) else granted(outcome)


@endpoint("A paid resource: 402 with the quote until paid, then the access grant",
          tag="paywall",
          headers=(*PAYMENT_HEADERS, *SUBSCRIBER_HEADERS), query=ResourceQuery,
          responses={200: (AccessGrantResponse, SubscriberGrantResponse), 402: PaymentRequired},
          errors=PAYMENT_ERRORS, response_headers=PAYMENT_RESPONSE_HEADERS,
          description="The x402 retry contract: repeat the request with X-PAYMENT "
                      "(x402Version 0 or 1) or PAYMENT-SIGNATURE (x402Version 2).")
async def resource(request: Request) -> Response:
    if not has_payment(request):
        free = await subscriber_pass(request)
        if free is not None:
            return free
    outcome = await settle_or_offer(request, services(request).payments, tenant(request),
                                    request.path_params["resource_id"],
                                    request.query_params.get("couponCode") or None)
    return outcome if isinstance(outcome, Response) else granted(outcome)


async def subscriber_pass(request: Request) -> Response | None:
    """200 without paying for a wallet that signs as a live subscriber (issue 13)."""
    subs = services(request).subscriptions
    signer = request_header(request, b"x-signer")
    signature = request_header(request, b"x-signature")
    message = request_header(request, b"x-message")
    if subs is None or not signer or not signature or not message:
        return None
    resource_id = request.path_params["resource_id"]
    sub = await subs.subscriber(tenant(request), resource_id, signer, signature, message)
    if sub is None:
        return None
    return spec_json({"granted": True, "resource": resource_id, "resourceType": "subscription",
                      "wallet": sub.wallet, "subscriptionId": sub.id, "status": sub.status.value,
                      "expiresAt": to_rfc3339(sub.current_period_end)}, headers=NO_STORE)


@endpoint("Look up a settled x402 payment by signature", tag="paywall",
          query=TransactionQuery, responses={200: TransactionVerifyResponse},
          errors=(ErrorCode.MISSING_FIELD, ErrorCode.TRANSACTION_NOT_FOUND))
async def transaction(request: Request) -> Response:
    tx = await services(request).payments.lookup(
        tenant(request), request.query_params.get("signature", "").strip())
    return spec_json(render.recorded_payment(tx))
