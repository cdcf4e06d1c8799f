"""How bodies are read: `null` members are absent at any depth, a body sent in several
chunks is joined, a declared or actual size over the limit is 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


async def test_null_members_are_absent(catalog_client: httpx.AsyncClient) -> None:
    plain = await catalog_client.post("/paywall/v1/quote", json={"resource": "p-article"})
    nulls = await catalog_client.post("/paywall/v1/quote",
                                      json={"resource": "p-article", "couponCode": None})
    assert plain.status_code == nulls.status_code == 402
    assert plain.json()["accepts"][0]["maxAmountRequired"] == \
        nulls.json()["accepts"][0]["maxAmountRequired"]


async def test_null_members_of_cart_items_are_absent(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.post("/paywall/v1/cart/quote", json={
        "items": [{"resource": "p-article", "quantity": None, "metadata": None}],
        "couponCode": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"][0]["quantity"] == 1


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_in_several_chunks_is_joined(catalog_client: httpx.AsyncClient) -> None:
    resp = await catalog_client.post(
        "/paywall/v1/quote", content=chunks(b'{"reso', b'urce": "p-a', b'rticle"}'),
        headers={"Content-Type": "application/json"})
    assert resp.status_code == 402, resp.text


async def test_an_undeclared_oversize_body_is_refused(catalog_client: httpx.AsyncClient) -> None:
    big = b'{"resource": "' + b"x" * 40_000
    resp = await catalog_client.post(
        "/paywall/v1/quote", content=chunks(big, big, b'"}'),
        headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "invalid_field"
