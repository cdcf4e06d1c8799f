"""POST /paywall/v1/nonce (spec 04): one-time nonces for signed admin requests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import NonceRequest, NonceResponse
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import spec_json


@endpoint("Issue a single-use admin nonce (five minutes)", tag="admin", request=NonceRequest,
          responses={200: NonceResponse}, body_required=False,
          description="The body is optional (spec 04): none, or {}, issues a nonce good for "
                      "any purpose.")
async def create_nonce(request: Request) -> Response:
    body = await parse_body(request, NonceRequest)
    issued = await services(request).nonces.create(tenant(request), body.purpose)
    return spec_json(render.nonce(issued), headers={"Cache-Control": "no-store"})
