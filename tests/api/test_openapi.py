"""GET /openapi.json: generated from the route table, valid OpenAPI 3.1, and true to what
the server really does (tests/fuzz checks the same with schemathesis, at length)."""

from __future__ import annotations

from typing import Any

import httpx
from api.conftest import client_for, config_from
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from cedros_pay.app import create_app
from cedros_pay.core.errors import ErrorCode
from cedros_pay.rest.endpoint import doc_of
from cedros_pay.storage.store import memory_store


async def _doc(client: httpx.AsyncClient, prefix: str = "") -> dict[str, Any]:
    resp = await client.get(f"{prefix}/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


def _response(doc: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, (method, path, status, sorted(responses))
    found: dict[str, Any] = responses[str(status)]
    return found


def _conforms(doc: dict[str, Any], method: str, path: str, resp: httpx.Response) -> None:
    """The body matches the schema the document gives for this status."""
    schema = _response(doc, method, path, resp.status_code)["content"]["application/json"][
        "schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [e.message for e in validator.iter_errors(resp.json())]
    assert errors == [], (method, path, resp.status_code, resp.text, errors)


def _codes(schema: dict[str, Any]) -> set[str]:
    """The error codes an envelope schema (or an anyOf of them) allows."""
    found: set[str] = set()
    for part in schema.get("anyOf", [schema]):
        for sub in part.get("allOf", ()):
            code = sub.get("properties", {}).get("error", {}).get("properties", {}).get("code")
            if code:
                found |= set(code["enum"])
    return found


async def test_document_is_valid_openapi_31(catalog_client: httpx.AsyncClient) -> None:
    doc = await _doc(catalog_client)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


async def test_every_route_is_described() -> None:
    app = create_app(config_from(), store=memory_store())
    async with client_for(app) as client:
        doc = await _doc(client)
    routes = [r for r in app.starlette.routes
              if isinstance(r, Route) and not r.path.endswith("/graphql")]
    assert [r.path for r in routes if doc_of(r.endpoint) is None] == []
    for route in routes:
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][route.path], (method, route.path)
    for path in ("/paywall/v1/stripe-session", "/webhook/stripe", "/admin/webhooks/{webhook_id}",
                 "/paywall/v1/subscription/cancel", "/paywall/v1/refunds/approve",
                 "/admin/refunds"):
        assert path in doc["paths"], path


async def test_route_prefix_is_reflected_in_paths() -> None:
    cfg = config_from({"CEDROS_ROUTE_PREFIX": "/api"})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        doc = await _doc(client, "/api")
    assert "/api/paywall/v1/quote" in doc["paths"]
    # Stripe's routes are served at the root as well, but documented once, prefixed.
    assert all(p.startswith("/api/") for p in doc["paths"])


async def test_fields_the_server_requires_are_required(catalog_client: httpx.AsyncClient
                                                       ) -> None:
    doc = await _doc(catalog_client)
    schemas = doc["components"]["schemas"]
    required = {"CouponValidateRequest": {"code"}, "QuoteRequest": {"resource"},
                "CartQuoteRequest": {"items"}, "CartItemRequest": {"resource"},
                "GaslessTransactionRequest": {"resourceId", "userWallet"},
                "RefundIdBody": {"refundId"},
                "RefundRequestBody": {"originalPurchaseId", "recipientWallet", "amount",
                                      "token"}}
    for model, fields in required.items():
        assert set(schemas[model]["required"]) == fields, model
    tx = doc["paths"]["/paywall/v1/x402-transaction/verify"]["get"]["parameters"]
    assert [p["name"] for p in tx if p["required"]] == ["signature"]
    # ... and the server refuses to go without them, with the code the document lists.
    for path, body, field in (("/paywall/v1/coupons/validate", {}, "code"),
                              ("/paywall/v1/quote", {"couponCode": "X"}, "resource")):
        resp = await catalog_client.post(path, json=body)
        assert resp.status_code == 400
        assert resp.json()["error"] == {**resp.json()["error"], "code": "missing_field",
                                        "details": {"field": field}}
        _conforms(doc, "POST", path, resp)
    resp = await catalog_client.get("/paywall/v1/x402-transaction/verify")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "missing_field"
    _conforms(doc, "GET", "/paywall/v1/x402-transaction/verify", resp)
    resp = await catalog_client.post("/paywall/v1/cart/quote", json={"items": []})
    assert resp.json()["error"]["code"] == "empty_cart"
    assert schemas["CartQuoteRequest"]["properties"]["items"]["minItems"] == 1


async def test_optional_fields_accept_null_and_the_nonce_body_is_optional(
        catalog_client: httpx.AsyncClient) -> None:
    doc = await _doc(catalog_client)
    coupon = doc["components"]["schemas"]["QuoteRequest"]["properties"]["couponCode"]
    assert {"type": "null"} in coupon["anyOf"]
    nonce = doc["paths"]["/paywall/v1/nonce"]["post"]
    assert nonce["requestBody"]["required"] is False
    resp = await catalog_client.post("/paywall/v1/nonce")  # no body at all: spec 04
    assert resp.status_code == 200
    _conforms(doc, "POST", "/paywall/v1/nonce", resp)


async def test_each_status_lists_the_spec_codes_it_can_carry(catalog_client: httpx.AsyncClient
                                                             ) -> None:
    doc = await _doc(catalog_client)
    quote = doc["paths"]["/paywall/v1/quote"]["post"]["responses"]
    offer, refusal = quote["402"]["content"]["application/json"]["schema"]["anyOf"]
    assert offer == {"$ref": "#/components/schemas/PaymentRequired"}
    assert {"invalid_payment_proof", "amount_below_minimum", "payment_already_used"} <= \
        _codes(refusal)
    assert _codes(quote["404"]["content"]["application/json"]["schema"]) >= {
        "resource_not_found"}
    for status, body in quote.items():
        codes = _codes(body.get("content", {}).get("application/json", {}).get("schema", {}))
        # Every listed code is rendered with this status (spec 15's table).
        assert all(ErrorCode(c).http_status == int(status) for c in codes
                   if int(status) not in (413, 431, 503)), (status, codes)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert {"400", "429", "431", "500", "503"} <= set(op["responses"]), (method, path)
            limited = op["responses"]["429"]
            assert {"Retry-After", "X-RateLimit-Reset"} <= set(limited["headers"])
    resp = await catalog_client.post("/paywall/v1/quote", json={"resource": "missing"})
    assert resp.status_code == 404
    _conforms(doc, "POST", "/paywall/v1/quote", resp)
    resp = await catalog_client.post("/paywall/v1/quote", json={"resource": "p-article"},
                                     headers={"X-PAYMENT": "not base64 json"})
    assert resp.status_code == 402 and "error" in resp.json()
    _conforms(doc, "POST", "/paywall/v1/quote", resp)


async def test_payment_and_idempotency_headers_are_documented(
        catalog_client: httpx.AsyncClient) -> None:
    doc = await _doc(catalog_client)
    quote = doc["paths"]["/paywall/v1/quote"]["post"]
    assert {"X-PAYMENT", "PAYMENT-SIGNATURE"} <= {p["name"] for p in quote["parameters"]
                                                  if p["in"] == "header"}
    assert "PAYMENT-REQUIRED" in quote["responses"]["402"]["headers"]
    assert {"X-PAYMENT-RESPONSE", "PAYMENT-RESPONSE"} <= set(quote["responses"]["200"]["headers"])
    session = doc["paths"]["/paywall/v1/stripe-session"]["post"]
    key = next(p for p in session["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and key["schema"]["maxLength"] == 255
    assert "409" in session["responses"]
    resp = await catalog_client.post("/paywall/v1/quote", json={"resource": "p-article"})
    assert resp.status_code == 402 and resp.headers["PAYMENT-REQUIRED"]
    _conforms(doc, "POST", "/paywall/v1/quote", resp)


async def test_admin_operations_name_their_security_schemes() -> None:
    without = create_app(config_from(), store=memory_store())
    async with client_for(without) as client:
        plain = await _doc(client)
    cfg = config_from({"CEDROS_ADMIN_API_KEY_1": "an-admin-key-for-tests"})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        keyed = await _doc(client)
        refused = await client.get("/admin/webhooks")
    schemes = keyed["components"]["securitySchemes"]
    assert schemes["adminBearer"] == {**schemes["adminBearer"], "type": "http",
                                      "scheme": "bearer"}
    assert {schemes[s]["name"] for s in ("adminSigner", "adminSignature", "adminMessage")} == \
        {"X-Signer", "X-Signature", "X-Message"}
    hooks = keyed["paths"]["/admin/webhooks"]["get"]
    assert hooks["security"] == [{"adminBearer": []}, {
        "adminSigner": [], "adminSignature": [], "adminMessage": []}]
    assert refused.status_code == 401
    _conforms(keyed, "GET", "/admin/webhooks", refused)
    # Without API keys configured, only the signed form is offered.
    assert "adminBearer" not in plain["components"]["securitySchemes"]
    assert plain["paths"]["/admin/refunds"]["post"]["security"] == [{
        "adminSigner": [], "adminSignature": [], "adminMessage": []}]


async def test_tenant_tokens_add_a_401_to_every_operation_only_when_checked() -> None:
    async with client_for(create_app(config_from(), store=memory_store())) as client:
        plain = await _doc(client)
    cfg = config_from({"CEDROS_TENANCY_JWT_SECRET": "s" * 32})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        checked = await _doc(client)
        forged = await client.get("/paywall/v1/products",
                                  headers={"Authorization": "Bearer a.b.c"})
    products = ("get", "/paywall/v1/products")
    assert "401" not in plain["paths"][products[1]][products[0]]["responses"]
    operations = [op for item in checked["paths"].values() for op in item.values()]
    assert operations and all(
        "unauthorized" in _codes(op["responses"]["401"]["content"]["application/json"]
                                 ["schema"]) for op in operations)
    assert forged.status_code == 401
    _conforms(checked, "GET", "/paywall/v1/products", forged)


async def test_real_responses_match_their_documented_schemas(
    catalog_client: httpx.AsyncClient,
) -> None:
    doc = await _doc(catalog_client)
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
        ("POST", "/resources/list", {"id": 3}),
        ("POST", "/paywall/v1/quote", {"resource": "missing"}),
        ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "p-video", "quantity": "2"}]}),
    ]
    statuses = []
    for method, path, body in calls:
        resp = await catalog_client.request(method, path, json=body)
        statuses.append(resp.status_code)
        _conforms(doc, method, path, resp)
    assert statuses == [200, 200, 402, 200, 200, 200, 200, 200, 200, 400, 404, 400]


async def test_405_names_every_method_of_the_path_in_allow(catalog_client: httpx.AsyncClient
                                                           ) -> None:
    resp = await catalog_client.put("/paywall/v1/quote", json={})
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert resp.json()["error"]["code"] == "invalid_field"
    # One path, a route per method: Allow lists them all (Starlette's names only one).
    resp = await catalog_client.patch("/admin/webhooks/whk_1")
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "DELETE, GET, HEAD"
    resp = await catalog_client.request("TRACE", "/paywall/some-product")
    assert resp.headers["Allow"] == "GET, HEAD, POST"
