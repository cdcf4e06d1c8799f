"""x402 settlement over HTTP: POST /paywall/v1/verify, the advertised resource endpoint
`/paywall/{id}`, and GET /paywall/v1/x402-transaction/verify (specs 02, 16)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import CedrosError
from cedros_pay.resolvers.payments import AccessGrant
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.models import (
    AccessGrantResponse,
    ErrorEnvelope,
    PaymentRequired,
    TransactionVerifyResponse,
)
from cedros_pay.rest.responses import spec_json

PAYMENT_HEADERS = ("X-PAYMENT",)
EXPOSE = {"Access-Control-Expose-Headers": "X-PAYMENT-RESPONSE"}


async def _settle(request: Request, resource_id: str | None) -> Response:
    """Authorize, and answer with the settlement header on success and on refusal."""
    svc = services(request)
    try:
        grant: AccessGrant = await svc.payments.authorize(
            tenant(request), request.headers.get("X-PAYMENT"), resource_id)
    except CedrosError as err:
        response = render_error(err)
        response.headers["X-PAYMENT-RESPONSE"] = render.settlement_header(
            signature=None, network=None, error=err.message)
        response.headers.update(EXPOSE)
        return response
    headers = {"X-PAYMENT-RESPONSE": render.settlement_header(
        signature=grant.signature, network=grant.network), **EXPOSE,
        "Cache-Control": "no-store"}
    return spec_json(render.access_grant(grant), headers=headers)


@endpoint("Verify and settle an x402 payment (X-PAYMENT header)", tag="paywall",
          headers=PAYMENT_HEADERS,
          responses={200: AccessGrantResponse, 400: ErrorEnvelope, 402: ErrorEnvelope,
                     404: ErrorEnvelope})
async def verify(request: Request) -> Response:
    return await _settle(request, None)


@endpoint("A paid resource: 402 with the quote until paid, then the access grant",
          tag="paywall", headers=PAYMENT_HEADERS,
          responses={200: AccessGrantResponse, 402: PaymentRequired, 404: ErrorEnvelope},
          description="The x402 retry contract: repeat the request with X-PAYMENT.")
async def resource(request: Request) -> Response:
    resource_id = request.path_params["resource_id"]
    if request.headers.get("X-PAYMENT"):
        return await _settle(request, resource_id)
    coupon = request.query_params.get("couponCode") or None
    q = await services(request).quotes.quote(tenant(request), resource_id, coupon)
    return spec_json(render.payment_required([q.crypto] if q.crypto else []), status=402,
                     headers={"Cache-Control": "no-store"})


@endpoint("Look up a settled x402 payment by signature", tag="paywall",
          responses={200: TransactionVerifyResponse, 400: ErrorEnvelope, 404: ErrorEnvelope})
async def transaction(request: Request) -> Response:
    tx = await services(request).payments.lookup(
        tenant(request), request.query_params.get("signature", "").strip())
    return spec_json(render.recorded_payment(tx))
