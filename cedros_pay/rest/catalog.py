"""GET /paywall/v1/products and POST /paywall/v1/coupons/validate (spec 04)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.resolvers.catalog import CatalogView
from cedros_pay.resolvers.pricing import PaymentMethod
from cedros_pay.rest import render
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import (
    CouponValidateRequest,
    CouponValidationResponse,
    ProductsResponse,
)
from cedros_pay.rest.parsing import parse_body
from cedros_pay.rest.responses import SpecJSON, spec_json


@endpoint("List active products with effective prices", tag="catalog",
          responses={200: ProductsResponse})
async def list_products(request: Request) -> Response:
    snapshot = await services(request).catalog.snapshot(tenant(request))
    return SpecJSON(None, encoded=snapshot.rendered(products_body))


def products_body(view: CatalogView) -> bytes:
    """The JSON of GET /products: rendered once per catalog snapshot, which keeps it."""
    return orjson.dumps(render.catalog(view))


@endpoint("Validate a coupon code", tag="catalog", request=CouponValidateRequest,
          responses={200: CouponValidationResponse},
          description="A coupon that cannot be used is 200 with valid=false (DESIGN §7).")
async def validate_coupon(request: Request) -> Response:
    body = await parse_body(request, CouponValidateRequest)
    if not body.code.strip():
        raise CedrosError(ErrorCode.MISSING_FIELD, "code is required", {"field": "code"})
    method = PaymentMethod(body.payment_method) if body.payment_method else None
    result = await services(request).coupons.validate(
        tenant(request), body.code.strip(), body.product_ids, method)
    return spec_json(render.coupon_validation(result))
