"""x402 settlement over HTTP: POST /paywall/v1/verify, the advertised resource endpoint
`/paywall/{id}`, and GET /paywall/v1/x402-transaction/verify (specs 02, 16).

Three protocol versions meet here. Every 402 carries the Cedros (v0) body unchanged plus a
PAYMENT-REQUIRED header (x402 v2); the client repeats the same request with X-PAYMENT
(v0 or v1) or PAYMENT-SIGNATURE (v2), and the reply header follows the version it paid with.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import CedrosError
from cedros_pay.resolvers.payments import AccessGrant, Offer, Payments, Settled
from cedros_pay.resolvers.x402_headers import named_resource, payment_version, wire_network
from cedros_pay.rest import render
from cedros_pay.rest.context import request_header, request_url, services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.models import (
    AccessGrantResponse,
    ErrorEnvelope,
    PaymentRequired,
    TransactionVerifyResponse,
)
from cedros_pay.rest.responses import SpecJSON, spec_json

PAYMENT_HEADERS = ("X-PAYMENT", "PAYMENT-SIGNATURE")
X402_HEADERS = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"
EXPOSE = {"Access-Control-Expose-Headers": X402_HEADERS}
NO_STORE = {"Cache-Control": "no-store"}
_RAW_402_HEADERS = [(k.lower().encode(), v.encode()) for k, v in {**NO_STORE, **EXPOSE}.items()]


def has_payment(request: Request) -> bool:
    """A non-empty payment header of any protocol version (on every 402 path)."""
    return bool(request_header(request, b"x-payment")
                or request_header(request, b"payment-signature"))


def payment_required(offer: Offer, url: str, error: str | None = None) -> Response:
    """402: the v0 body for the Cedros UI, PAYMENT-REQUIRED for official x402 clients."""
    crypto = offer.quote.crypto
    return SpecJSON(render.payment_required([crypto] if crypto else []), 402, raw_headers=[
        (b"payment-required", render.exact_payment_required(offer, url, error).encode()),
        *_RAW_402_HEADERS])


def _version(request: Request) -> int:
    """The protocol version a refusal should answer in (0 when unreadable)."""
    return payment_version(request.headers.get("X-PAYMENT"),
                           request.headers.get("PAYMENT-SIGNATURE"))


async def settle(request: Request, resource_id: str | None,
                 coupon_code: str | None = None) -> Settled | Response:
    """Settle the request's payment header; a refusal comes back as the finished error
    response, carrying the settlement header of the version the client used."""
    svc = services(request)
    try:
        return await svc.payments.settle(
            tenant(request), x_payment=request.headers.get("X-PAYMENT"),
            payment_signature=request.headers.get("PAYMENT-SIGNATURE"),
            resource_id=resource_id, coupon_code=coupon_code)
    except CedrosError as err:
        response = refusal(request, err, svc.quotes.terms.network)
        target = resource_id or _named_resource(request)
        if response.status_code == 402 and target:
            await offer_again(response, svc.payments, tenant(request), target,
                              coupon_code, request_url(request), err.message)
        return response


def _named_resource(request: Request) -> str | None:
    """The resource a v0 payment names (POST /verify has no resource in its URL)."""
    return named_resource(request.headers.get("X-PAYMENT"))


async def offer_again(response: Response, payments: Payments, tenant_id: str,
                      resource_id: str, coupon_code: str | None, url: str,
                      error: str) -> None:
    """Every 402 carries PAYMENT-REQUIRED, a refused payment's too: the client may pay
    again against a fresh offer (with `error` saying what was wrong with the last one)."""
    try:
        offer = await payments.offer(tenant_id, resource_id, coupon_code, url)
    except CedrosError:
        return  # the resource itself is gone; the error body says why
    response.headers["PAYMENT-REQUIRED"] = render.exact_payment_required(offer, url, error)


def refusal(request: Request, err: CedrosError, network: str) -> Response:
    """A refused payment: the spec error, plus the settlement header (`success: false`) of
    the version the client paid with."""
    response = render_error(err)
    version = _version(request)
    if version in (1, 2):
        wire = wire_network(network, version)
        name, value = render.exact_refusal(version, wire, err)
        response.headers[name] = value
    else:
        response.headers["X-PAYMENT-RESPONSE"] = render.settlement_header(
            signature=None, network=None, error=err.message)
    response.headers.update({**EXPOSE, **NO_STORE})
    return response


def settled_headers(settled: Settled) -> dict[str, str]:
    """The success header(s) for the version paid with."""
    if settled.version == 0:
        grant = settled.grant
        value = render.settlement_header(signature=grant.signature, network=grant.network)
        return {"X-PAYMENT-RESPONSE": value, **EXPOSE, **NO_STORE}
    name, value = render.exact_settlement(settled)
    return {name: value, **EXPOSE, **NO_STORE}


async def _grant(request: Request, resource_id: str | None,
                 coupon_code: str | None = None) -> Response:
    outcome = await settle(request, resource_id, coupon_code)
    if isinstance(outcome, Response):
        return outcome
    grant: AccessGrant = outcome.grant
    headers = settled_headers(outcome)
    if grant.timings:  # W3C Server-Timing: lets operators (and bench/) see our share
        headers["Server-Timing"] = ", ".join(f"{name};dur={ms:.3f}"
                                             for name, ms in grant.timings)
    return spec_json(render.access_grant(grant), headers=headers)


@endpoint("Verify and settle an x402 payment (X-PAYMENT header)", tag="paywall",
          headers=PAYMENT_HEADERS,
          responses={200: AccessGrantResponse, 400: ErrorEnvelope, 402: ErrorEnvelope,
                     404: ErrorEnvelope})
async def verify(request: Request) -> Response:
    return await _grant(request, None)


@endpoint("A paid resource: 402 with the quote until paid, then the access grant",
          tag="paywall", headers=PAYMENT_HEADERS,
          responses={200: AccessGrantResponse, 402: PaymentRequired, 404: ErrorEnvelope},
          description="The x402 retry contract: repeat the request with X-PAYMENT "
                      "(x402Version 0 or 1) or PAYMENT-SIGNATURE (x402Version 2).")
async def resource(request: Request) -> Response:
    resource_id = request.path_params["resource_id"]
    coupon = request.query_params.get("couponCode") or None
    if has_payment(request):
        return await _grant(request, resource_id, coupon)
    url = request_url(request)
    offer = await services(request).payments.offer(tenant(request), resource_id, coupon, url)
    return payment_required(offer, url)


@endpoint("Look up a settled x402 payment by signature", tag="paywall",
          responses={200: TransactionVerifyResponse, 400: ErrorEnvelope, 404: ErrorEnvelope})
async def transaction(request: Request) -> Response:
    tx = await services(request).payments.lookup(
        tenant(request), request.query_params.get("signature", "").strip())
    return spec_json(render.recorded_payment(tx))
