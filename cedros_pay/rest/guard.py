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
from cedros_pay.rest.errors import render_error
from cedros_pay.rest.payments import settle_or_offer, settled_headers

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
            try:
                outcome = await settle_or_offer(request, svc.payments, tenant, resource_id,
                                                request.query_params.get("couponCode") or None)
            except CedrosError as err:  # the host app has no Cedros error handlers
                return render_error(err)
            if isinstance(outcome, Response):
                return outcome
            request.state.payment = outcome.grant
            response = await endpoint(request)
            response.headers.update(settled_headers(outcome))
            return response

        return guarded

    return decorate
