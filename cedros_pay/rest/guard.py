"""`require_payment`: protect any Starlette endpoint with an x402 paywall (spec 19).

No payment → 402 with the quote (v0 body + PAYMENT-REQUIRED); a bad one → its spec error;
a good one (X-PAYMENT v0/v1 or PAYMENT-SIGNATURE v2) → the endpoint runs with the grant in
`request.state.payment` and the response carries the settlement header of that version.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import CedrosError
from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services
from cedros_pay.rest.context import request_url
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.payments import (
    has_payment,
    offer_again,
    payment_required,
    refusal,
    settled_headers,
)

Endpoint = Callable[[Request], Awaitable[Response]]


def payment_guard(services: Callable[[], Awaitable[Services]],
                  resource: str | Callable[[Request], str]) -> Callable[[Endpoint], Endpoint]:
    """Decorator factory; `services` yields the Cedros services (started on first use)."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            svc = await services()
            resource_id = resource(request) if callable(resource) else resource
            tenant = getattr(request.state, "tenant", None) or DEFAULT_TENANT
            coupon = request.query_params.get("couponCode") or None
            if not has_payment(request):
                try:
                    offer = await svc.payments.offer(tenant, resource_id, coupon,
                                                     request_url(request))
                except CedrosError as err:
                    return render_error(err)
                return payment_required(offer, request_url(request))
            try:
                settled = await svc.payments.settle(
                    tenant, x_payment=request.headers.get("X-PAYMENT"),
                    payment_signature=request.headers.get("PAYMENT-SIGNATURE"),
                    resource_id=resource_id, coupon_code=coupon)
            except CedrosError as err:
                refused = refusal(request, err, svc.quotes.terms.network)
                if refused.status_code == 402:
                    await offer_again(refused, svc.payments, tenant, resource_id, coupon,
                                      request_url(request), err.message)
                return refused
            request.state.payment = settled.grant
            response = await endpoint(request)
            response.headers.update(settled_headers(settled))
            return response

        return guarded

    return decorate
