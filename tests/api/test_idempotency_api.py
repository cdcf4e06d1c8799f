"""Idempotency-Key through the real app and its whole chain: a key bound to its request,
one cart for a key however often it is sent, 422 for a reused key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.test_middleware import CART, assert_chain_headers, client_for, make_app, recording_store

from cedros_pay.core.models import CartQuote

OTHER_CART = {"items": [{"resource": "p-article", "quantity": 3}]}


async def test_a_key_reused_for_another_cart_is_422_and_creates_nothing(tmp_path: Path) -> None:
    store, saved = recording_store()
    async with client_for(make_app(tmp_path, store=store)) as client:
        key = {"Idempotency-Key": "order-7"}
        first = await client.post("/paywall/v1/cart/quote", json=CART, headers=key)
        reused = await client.post("/paywall/v1/cart/quote", json=OTHER_CART, headers=key)
        elsewhere = await client.post("/paywall/v1/cart/checkout", json=CART, headers=key)
        again = await client.post("/paywall/v1/cart/quote", json=CART, headers=key)
    assert first.status_code == 200
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["cartId"] not in reused.text
    assert_chain_headers(reused)
    assert elsewhere.status_code == 422  # the key belongs to the cart quote
    assert again.headers["X-Idempotency-Replay"] == "true"
    assert again.json() == first.json()
    assert len(saved) == 1


async def test_repeats_in_flight_get_the_first_answer_and_another_body_422(
        tmp_path: Path) -> None:
    store, saved = recording_store(delay=0.3)
    saving = asyncio.Event()
    slow_save = store.carts.save

    async def save(quote: CartQuote) -> None:
        saving.set()
        await slow_save(quote)

    store.carts.save = save  # type: ignore[method-assign]
    app = make_app(tmp_path, store=store)
    async with client_for(app) as client:
        key = {"Idempotency-Key": "order-8"}
        first = asyncio.create_task(
            client.post("/paywall/v1/cart/quote", json=CART, headers=key))
        await saving.wait()  # the first runs, so it holds the key
        assert await app.infra.idempotency.claimant("req:default:order-8") is not None
        other, same = await asyncio.gather(
            client.post("/paywall/v1/cart/quote", json=OTHER_CART, headers=key),
            client.post("/paywall/v1/cart/quote", json=CART, headers=key))
        done = await first
    assert other.status_code == 422
    assert same.status_code == 200 and same.json() == done.json()
    assert same.headers["X-Idempotency-Replay"] == "true"
    assert len(saved) == 1
