"""`require_payment`: protect any Starlette endpoint with an x402 paywall (spec 19).

No payment → 402 with the quote; a bad one → its spec error; a good one → the endpoint
runs with the grant in `request.state.payment` and the response carries the settlement.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import CedrosError
from cedros_pay.core.models import DEFAULT_TENANT
from cedros_pay.resolvers.services import Services
from cedros_pay.rest import render
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.responses import spec_json

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
            header = request.headers.get("X-PAYMENT")
            try:
                if not header:
                    quote = await svc.quotes.quote(tenant, resource_id,
                                                   request.query_params.get("couponCode"))
                    return spec_json(render.payment_required(
                        [quote.crypto] if quote.crypto else []), status=402)
                grant = await svc.payments.authorize(tenant, header, resource_id)
            except CedrosError as err:
                refused = render_error(err)
                if header:
                    refused.headers["X-PAYMENT-RESPONSE"] = render.settlement_header(
                        signature=None, network=None, error=err.message)
                return refused
            request.state.payment = grant
            response = await endpoint(request)
            response.headers["X-PAYMENT-RESPONSE"] = render.settlement_header(
                signature=grant.signature, network=grant.network)
            return response

        return guarded

    return decorate
