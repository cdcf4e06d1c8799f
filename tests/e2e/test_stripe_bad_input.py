"""Garbage at every card route: a spec code, never a 500, and nothing sent to Stripe."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from e2e.stripe_world import stripe_world

S = "/paywall/v1/stripe-session"
C = "/paywall/v1/cart/checkout"
V = "/paywall/v1/stripe-session/verify"
W = "/webhook/stripe"
BIG = b'{"resource": "' + b"x" * 70_000 + b'"}'

# (method, path, body: json | raw bytes | None, query, status, code)
CASES: list[tuple[str, str, Any, dict[str, str], int, str]] = [
    ("POST", S, b"", {}, 400, "missing_field"),
    ("POST", S, {}, {}, 400, "missing_field"),
    ("POST", S, {"resource": None}, {}, 400, "missing_field"),
    ("POST", S, {"resource": "  "}, {}, 400, "missing_field"),
    ("POST", S, b"{not json", {}, 400, "invalid_field"),
    ("POST", S, b"[1, 2]", {}, 400, "invalid_field"),
    ("POST", S, b"\xff\xfe\x00", {}, 400, "invalid_field"),
    ("POST", S, BIG, {}, 413, "invalid_field"),
    ("POST", S, {"resource": 7}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "x" * 256}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "nope"}, {}, 404, "resource_not_found"),
    ("POST", S, {"resource": "ebook", "couponCode": 5}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "couponCode": "x" * 65}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "customerEmail": "not-an-email"}, {}, 400,
     "invalid_field"),
    ("POST", S, {"resource": "ebook", "customerEmail": ["a@b.c"]}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "successUrl": "javascript:alert(1)"}, {}, 400,
     "invalid_field"),
    ("POST", S, {"resource": "ebook", "cancelUrl": "ftp://x.example/"}, {}, 400,
     "invalid_field"),
    ("POST", S, {"resource": "ebook", "successUrl": "https://" + "a" * 2050}, {}, 400,
     "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": "x"}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"k": {"n": 1}}}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"k": 5}}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {f"k{i}": "v" for i in range(41)}}, {},
     400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"k" * 41: "v"}}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"a[b]": "v"}}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"": "v"}}, {}, 400, "invalid_field"),
    ("POST", S, {"resource": "ebook", "metadata": {"k": "v" * 501}}, {}, 400,
     "invalid_field"),
    ("GET", S, None, {}, 405, "invalid_field"),
    ("POST", C, {}, {}, 400, "empty_cart"),
    ("POST", C, {"items": []}, {}, 400, "empty_cart"),
    ("POST", C, {"items": None}, {}, 400, "empty_cart"),
    ("POST", C, {"items": "ebook"}, {}, 400, "invalid_field"),
    ("POST", C, {"items": [1]}, {}, 400, "invalid_field"),
    ("POST", C, {"items": [{}]}, {}, 400, "invalid_cart_item"),
    ("POST", C, {"items": [{"resource": "", "priceId": ""}]}, {}, 400, "invalid_cart_item"),
    ("POST", C, {"items": [{"priceId": "price_unknown"}]}, {}, 400, "invalid_cart_item"),
    ("POST", C, {"items": [{"priceId": "price_ebook", "resource": "course"}]}, {}, 400,
     "invalid_cart_item"),
    ("POST", C, {"items": [{"resource": "nope"}]}, {}, 404, "resource_not_found"),
    ("POST", C, {"items": [{"resource": "coins"}]}, {}, 400, "invalid_resource"),
    ("POST", C, {"items": [{"resource": "ebook", "quantity": "two"}]}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook", "quantity": 1.5}]}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook", "quantity": 10**7}]}, {}, 400,
     "invalid_cart_item"),
    ("POST", C, {"items": [{"resource": "ebook", "quantity": 10**40}]}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook"}] * 101}, {}, 400, "invalid_cart_item"),
    ("POST", C, {"items": [{"resource": "ebook", "metadata": {"k": {"x": 1}}}]}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook", "metadata": {"k" * 41: "v"}}]}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook"}], "metadata": []}, {}, 400, "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook"}], "customerEmail": "@"}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook"}], "successUrl": "nope"}, {}, 400,
     "invalid_field"),
    ("POST", C, {"items": [{"resource": "ebook"}], "couponCode": ["A"]}, {}, 400,
     "invalid_field"),
    ("POST", C, b"null", {}, 400, "invalid_field"),
    ("GET", V, None, {}, 400, "missing_field"),
    ("GET", V, None, {"session_id": ""}, 400, "missing_field"),
    ("GET", V, None, {"session_id": "cs_test_unknown"}, 404, "session_not_found"),
    ("GET", V, None, {"session_id": "../../etc/passwd"}, 400, "invalid_field"),
    ("GET", V, None, {"session_id": "cs_" + "a" * 300}, 400, "invalid_field"),
    ("GET", V, None, {"session_id": "cs_\x00"}, 400, "invalid_field"),
    ("POST", W, b"", {}, 402, "invalid_signature"),
    ("POST", W, b"{}", {}, 402, "invalid_signature"),
    ("POST", W, b"\xff" * 10, {}, 402, "invalid_signature"),
    ("POST", W, b"x" * (600 * 1024), {}, 413, "invalid_field"),
    ("DELETE", W, None, {}, 405, "invalid_field"),
    ("POST", "/stripe/success", None, {}, 405, "invalid_field"),
]


@pytest.mark.parametrize(("method", "path", "body", "query", "status", "code"), CASES,
                         ids=[f"{i:02d}-{c[1].rsplit('/', 1)[-1]}-{c[5]}"
                              for i, c in enumerate(CASES)])
async def test_bad_input_gets_the_spec_code(method: str, path: str, body: Any,
                                            query: dict[str, str], status: int,
                                            code: str) -> None:
    async with stripe_world() as w:
        if isinstance(body, (bytes, type(None))):
            resp = await w.client.request(method, path, content=body, params=query,
                                          headers={"Content-Type": "application/json"})
        else:
            resp = await w.client.request(method, path, json=body, params=query)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
        assert w.fake.requests == []


_VALUES: list[Any] = [None, 0, -1, 2**63, 1.5, "", " ", "ebook", "x" * 300, "\u0000", "😀",
                      [], [1], {}, {"a": "b"}, {"a": {"b": 1}}, True, "price_ebook",
                      "https://ok.example/", "a@b.example"]


def _garbage(rng: random.Random, fields: list[str]) -> dict[str, Any]:
    return {f: rng.choice(_VALUES) for f in fields if rng.random() < 0.7}


async def test_random_garbage_never_gets_a_500(tmp_path: Path) -> None:
    rng = random.Random(11)
    single = ["resource", "customerEmail", "metadata", "successUrl", "cancelUrl",
              "couponCode"]
    item = ["resource", "priceId", "quantity", "description", "metadata"]
    no_limits = tmp_path / "cfg.yaml"
    no_limits.write_text("rate_limit:\n  per_ip: {enabled: false}\n  global: {enabled: false}\n")
    async with stripe_world(yaml_path=str(no_limits)) as w:
        for _ in range(150):
            body = _garbage(rng, single)
            resp = await w.session(body)
            assert resp.status_code < 500 or resp.json()["error"]["code"] == "stripe_error", (
                body, resp.text)
            cart: dict[str, Any] = _garbage(rng, [f for f in single if f != "resource"])
            cart["items"] = rng.choice([[_garbage(rng, item) for _ in range(rng.randint(0, 3))],
                                        rng.choice(_VALUES)])
            resp = await w.client.post(C, content=json.dumps(cart),
                                       headers={"Content-Type": "application/json"})
            assert resp.status_code < 500 or resp.json()["error"]["code"] == "stripe_error", (
                cart, resp.text)
            resp = await w.client.get(V, params={"session_id": str(rng.choice(_VALUES))})
            assert resp.status_code in (400, 404), resp.text
