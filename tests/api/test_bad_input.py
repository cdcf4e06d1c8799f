"""Garbage in, spec code out: never a 500, never a stack trace (specs 15, 17)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BIG = b'{"resource": "' + b"x" * 70_000 + b'"}'

# (method, path, body: json object | raw bytes, status, code)
CASES: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/paywall/v1/quote", b"", 400, "missing_field"),
    ("POST", "/paywall/v1/quote", {}, 400, "missing_field"),
    ("POST", "/paywall/v1/quote", {"resource": ""}, 400, "missing_field"),
    ("POST", "/paywall/v1/quote", {"resource": None}, 400, "missing_field"),
    ("POST", "/paywall/v1/quote", b"{not json", 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", b"[1, 2]", 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", b'"a string"', 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", {"resource": 42}, 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", {"resource": ["p-article"]}, 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", {"resource": "nope"}, 404, "resource_not_found"),
    ("POST", "/paywall/v1/quote", {"resource": "x" * 256}, 400, "invalid_field"),
    ("POST", "/paywall/v1/quote", {"resource": "p-article", "couponCode": 5}, 400,
     "invalid_field"),
    ("POST", "/paywall/v1/quote", BIG, 413, "invalid_field"),
    ("POST", "/paywall/v1/quote", b"\xff\xfe\x00", 400, "invalid_field"),
    ("POST", "/paywall/v1/cart/quote", {}, 400, "empty_cart"),
    ("POST", "/paywall/v1/cart/quote", {"items": []}, 400, "empty_cart"),
    ("POST", "/paywall/v1/cart/quote", {"items": None}, 400, "empty_cart"),
    ("POST", "/paywall/v1/cart/quote", {"items": "p-article"}, 400, "invalid_field"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{}]}, 400, "invalid_cart_item"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": ""}]}, 400,
     "invalid_cart_item"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "nope"}]}, 404,
     "resource_not_found"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "p-stripe-only"}]}, 400,
     "invalid_cart_item"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "p-video", "quantity": "two"}]},
     400, "invalid_field"),
    ("POST", "/paywall/v1/cart/quote",
     {"items": [{"resource": "p-video", "quantity": 10**7}]}, 400, "invalid_cart_item"),
    ("POST", "/paywall/v1/cart/quote",
     {"items": [{"resource": "p-video", "quantity": 1.5}]}, 400, "invalid_field"),
    ("POST", "/paywall/v1/cart/quote",
     {"items": [{"resource": "p-video"}] * 101}, 400, "invalid_cart_item"),
    ("POST", "/paywall/v1/cart/quote",
     {"items": [{"resource": "p-video", "metadata": {"k": {"nested": 1}}}]}, 400,
     "invalid_field"),
    ("POST", "/paywall/v1/cart/quote", {"items": [{"resource": "p-video"}], "metadata": []},
     400, "invalid_field"),
    ("POST", "/paywall/v1/coupons/validate", {}, 400, "missing_field"),
    ("POST", "/paywall/v1/coupons/validate", {"code": "  "}, 400, "missing_field"),
    ("POST", "/paywall/v1/coupons/validate", {"code": "SAVE10", "paymentMethod": "paypal"},
     400, "invalid_field"),
    ("POST", "/paywall/v1/coupons/validate", {"code": "SAVE10", "productIds": "p-article"},
     400, "invalid_field"),
    ("POST", "/paywall/v1/coupons/validate", b"null", 400, "invalid_field"),
    ("POST", "/paywall/v1/nonce", {"purpose": "steal-money"}, 400, "invalid_field"),
    ("POST", "/paywall/v1/nonce", {"purpose": 7}, 400, "invalid_field"),
    ("GET", "/paywall/v1/quote", None, 405, "invalid_field"),
    ("GET", "/paywall/v1/nowhere", None, 404, "resource_not_found"),
    ("DELETE", "/paywall/v1/products", None, 405, "invalid_field"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), CASES,
                         ids=[f"{i:02d}-{c[1].rsplit('/', 1)[-1]}-{c[4]}"
                              for i, c in enumerate(CASES)])
async def test_bad_request_gets_the_spec_code(
    catalog_client: httpx.AsyncClient, method: str, path: str, body: Any, status: int,
    code: str,
) -> None:
    if isinstance(body, bytes):
        resp = await catalog_client.request(method, path, content=body,
                                            headers={"Content-Type": "application/json"})
    elif body is None:
        resp = await catalog_client.request(method, path)
    else:
        resp = await catalog_client.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert err["message"] and "Traceback" not in resp.text
    assert set(err) == {"code", "message", "retryable", "details"}

