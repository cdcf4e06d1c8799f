"""Discovery for agents: RFC 8615 payment options, the A2A agent card, MCP resources/list,
and the OpenAPI document (spec 02)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.resolvers.catalog import ProductView
from cedros_pay.rest.context import services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import (
    AgentCard,
    JsonRpcRequest,
    JsonRpcResponse,
    OpenAPIDocument,
    PaymentOptions,
)
from cedros_pay.rest.openapi import build_openapi
from cedros_pay.rest.parsing import read_body
from cedros_pay.rest.responses import spec_json

X402_METHOD = "x402-solana-spl-transfer"


def _prefix(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{services(request).server.route_prefix}"


def _name(view: ProductView) -> str:
    return view.product.metadata.get("name") or view.product.description or view.product.id


def _price(view: ProductView) -> dict[str, Any]:
    price: dict[str, Any] = {}
    if view.fiat is not None:
        price["fiat"] = {"amount": view.fiat.effective.to_major(),
                         "currency": view.fiat.effective.asset.code}
    if view.crypto is not None:
        price["crypto"] = {"amount": view.crypto.effective.to_major(),
                           "token": view.crypto.effective.asset.code}
    return price


def _methods(request: Request) -> list[str]:
    features = services(request).server.features
    return [m for m, f in (("stripe", "stripe"), (X402_METHOD, "x402")) if f in features]


@endpoint("Payment options (RFC 8615 discovery)", tag="discovery",
          responses={200: PaymentOptions})
async def payment_options(request: Request) -> Response:
    svc = services(request)
    view = await svc.catalog.list(tenant(request))
    server = svc.server
    return spec_json({
        "version": "1.0",
        "server": "cedros-pay",
        "resources": [
            {"id": v.product.id, "name": _name(v), "description": v.product.description,
             "endpoint": f"{_prefix(request)}/paywall/{v.product.id}", "price": _price(v),
             "metadata": dict(v.product.metadata)}
            for v in view.products
        ],
        "payment": {
            "methods": _methods(request),
            "x402": {"network": server.network, "paymentAddress": server.payment_address,
                     "tokenMint": server.token_mint},
        },
    })


@endpoint("Agent card (A2A)", tag="discovery", responses={200: AgentCard})
async def agent_card(request: Request) -> Response:
    svc = services(request)
    base = f"{request.url.scheme}://{request.url.netloc}{_prefix(request)}"
    methods = _methods(request)
    payment_methods: list[dict[str, Any]] = []
    if X402_METHOD in methods:
        payment_methods.append({
            "type": "cryptocurrency", "protocol": X402_METHOD,
            "network": svc.server.network,
            "description": "Instant stablecoin payments on Solana"})
    if "stripe" in methods:
        payment_methods.append({"type": "fiat", "protocol": "stripe",
                                "description": "Credit/debit card payments"})
    return spec_json({
        "name": "Cedros Pay",
        "version": "1.0",
        "description": "Unified payment gateway for people and AI agents: "
                       "Stripe card checkout and x402 stablecoin payments on Solana.",
        "service_endpoint": base,
        "capabilities": ["payment-processing", "x402-payment", "stripe-checkout",
                         "product-catalog", "webhook-notifications", "coupon-support"],
        "authentication": {"type": "hybrid", "schemes": ["x402", "stripe-session", "none"]},
        "payment_methods": payment_methods,
        "metadata": {
            "project_url": "https://github.com/CedrosPay/server",
            "documentation": f"{base}/openapi.json",
            "discovery_rfc8615": "/.well-known/payment-options",
            "discovery_mcp": f"POST {_prefix(request)}/resources/list",
            "openapi_spec": f"{_prefix(request)}/openapi.json",
        },
    })


def _rpc_error(rid: Any, code: int, message: str, status: int = 200) -> Response:
    return spec_json({"jsonrpc": "2.0", "id": rid,
                      "error": {"code": code, "message": message, "data": None}}, status=status)


@endpoint("MCP resources/list (JSON-RPC 2.0)", tag="discovery",
          request=JsonRpcRequest, responses={200: JsonRpcResponse, 400: JsonRpcResponse},
          description="A body that is not JSON (-32700) or not a JSON-RPC 2.0 request "
                      "(-32600) is answered 400; an unknown method is 200 with -32601.")
async def mcp_resources(request: Request) -> Response:
    try:
        data = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError:
        return _rpc_error(None, -32700, "Parse error", 400)
    rid = data.get("id") if isinstance(data, dict) else None
    try:
        rpc = JsonRpcRequest.model_validate(data)
    except ValidationError:
        return _rpc_error(rid if isinstance(rid, int | str) and not isinstance(rid, bool)
                          else None, -32600, "Invalid Request", 400)
    if rpc.method != "resources/list":
        return _rpc_error(rpc.id, -32601, "Method not found")
    view = await services(request).catalog.list(tenant(request))
    return spec_json({"jsonrpc": "2.0", "id": rpc.id, "result": {"resources": [
        {"uri": f"cedros-pay://paywall/{v.product.id}", "name": _name(v),
         "description": v.product.description, "mimeType": "application/json"}
        for v in view.products]}})


@endpoint("This OpenAPI document", tag="discovery", responses={200: OpenAPIDocument})
async def openapi(request: Request) -> Response:
    doc = request.app.state.__dict__.get("_openapi")
    if doc is None:
        svc = services(request)
        doc = build_openapi(request.app.routes, title="Cedros Pay", version=svc.server.version,
                            admin_api_keys=svc.admin_auth.accepts_api_keys,
                            tenant_tokens=svc.server.tenant_tokens)
        request.app.state._openapi = doc
    return spec_json(doc)


