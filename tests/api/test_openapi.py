"""GET /openapi.json: generated from the route table, valid OpenAPI 3.1, and true to the
responses the server really sends."""

from __future__ import annotations

from typing import Any

import httpx
from api.conftest import client_for, config_from
from openapi_spec_validator import validate
from pydantic import BaseModel
from starlette.routing import Route

from cedros_pay.app import create_app
from cedros_pay.rest.endpoint import doc_of
from cedros_pay.storage.store import memory_store


async def test_document_is_valid_openapi_31(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_documented_route_is_described(catalog_client: httpx.AsyncClient) -> None:
    doc = (await catalog_client.get("/openapi.json")).json()
    app = create_app(config_from(), store=memory_store())
    routes = [r for r in app.starlette.routes
              if isinstance(r, Route) and not r.path.endswith("/graphql")]
    undocumented = [r.path for r in routes if doc_of(r.endpoint) is None]
    assert undocumented == []
    for route in routes:
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][route.path], (method, route.path)
    assert "requestBody" in doc["paths"]["/paywall/v1/quote"]["post"]
    assert "402" in doc["paths"]["/paywall/v1/quote"]["post"]["responses"]


async def test_route_prefix_is_reflected_in_paths() -> None:
    cfg = config_from({"CEDROS_ROUTE_PREFIX": "/api"})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        doc = (await client.get("/api/openapi.json")).json()
    assert "/api/paywall/v1/quote" in doc["paths"]
    assert all(p.startswith("/api/") for p in doc["paths"])


def _model_for(route_path: str, method: str, status: int) -> type[BaseModel]:
    app = create_app(config_from(), store=memory_store())
    for r in app.starlette.routes:
        if isinstance(r, Route) and r.path == route_path and method in (r.methods or ()):
            doc = doc_of(r.endpoint)
            assert doc is not None
            model = doc.responses[status]
            assert model is not None
            return model
    raise AssertionError(f"no route {method} {route_path}")


async def test_real_responses_match_their_documented_models(
    catalog_client: httpx.AsyncClient,
) -> None:
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/cedros-health", None),
        ("GET", "/paywall/v1/products", None),
        ("POST", "/paywall/v1/quote", {"resource": "p-article"}),
        ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "p-video"}]}),
        ("POST", "/paywall/v1/coupons/validate", {"code": "SAVE10"}),
        ("POST", "/paywall/v1/nonce", {}),
        ("GET", "/.well-known/payment-options", None),
        ("GET", "/.well-known/agent.json", None),
        ("POST", "/resources/list", {"jsonrpc": "2.0", "id": 1, "method": "resources/list"}),
        ("POST", "/paywall/v1/quote", {"resource": "missing"}),
    ]
    for method, path, body in calls:
        resp = await catalog_client.request(method, path, json=body)
        model = _model_for(path, method, resp.status_code)
        model.model_validate(resp.json(), strict=False)
