"""Stripe Checkout sessions end to end: the real app, the official SDK, the fake Stripe."""

from __future__ import annotations

import pytest
from e2e.stripe_world import CANCEL_URL, SUCCESS_URL, stripe_world

SESSIONS = "/v1/checkout/sessions"


async def test_session_sends_the_price_id_when_no_coupon_changes_the_price() -> None:
    async with stripe_world() as w:
        resp = await w.session({"resource": "ebook", "customerEmail": "a@b.example",
                                "metadata": {"order": "42"}})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"sessionId", "url"}
        assert body["sessionId"].startswith("cs_test_")
        assert body["url"].endswith(body["sessionId"])
        [call] = w.fake.posts(SESSIONS)
        sent = call.params
        assert sent["mode"] == "payment"
        assert sent["line_items"] == [{"price": "price_ebook", "quantity": "1"}]
        assert sent["customer_email"] == "a@b.example"
        assert sent["success_url"] == SUCCESS_URL and sent["cancel_url"] == CANCEL_URL
        assert sent["metadata"] == {"order": "42", "resource_id": "ebook",
                                    "tenant_id": "default"}
        assert w.fake.sessions[body["sessionId"]]["amount_total"] == 1000
        local = await w.store.sessions.get("default", body["sessionId"])
        assert local is not None and local.amount_cents == 1000 and local.resource_id == "ebook"


@pytest.mark.parametrize(("code", "cents", "applied"), [
    ("SAVE20", 800, "SAVE20"),
    ("save20", 800, "SAVE20"),  # codes are looked up upper-cased too
    ("EBOOKHALF", 500, "EBOOKHALF"),
    ("FIVEOFF", 500, "FIVEOFF"),
])
async def test_coupon_sends_the_final_unit_amount(code: str, cents: int, applied: str) -> None:
    async with stripe_world() as w:
        resp = await w.session({"resource": "ebook", "couponCode": code,
                                "successUrl": "https://other.example/ok",
                                "cancelUrl": "https://other.example/no"})
        assert resp.status_code == 200, resp.text
        [call] = w.fake.posts(SESSIONS)
        [line] = call.params["line_items"]
        assert line == {"quantity": "1", "price_data": {
            "currency": "usd", "unit_amount": str(cents), "product_data": {"name": "An ebook"}}}
        assert call.params["metadata"]["coupon_code"] == applied
        assert call.params["metadata"]["original_amount_cents"] == "1000"
        assert call.params["metadata"]["discount_amount_cents"] == str(1000 - cents)
        assert call.params["success_url"] == "https://other.example/ok"
        assert call.params["cancel_url"] == "https://other.example/no"
        assert w.fake.sessions[resp.json()["sessionId"]]["amount_total"] == cents


async def test_product_priced_only_at_stripe_is_read_from_stripe_for_a_coupon() -> None:
    async with stripe_world() as w:
        plain = await w.session({"resource": "remote"})
        assert plain.status_code == 200, plain.text
        assert w.fake.calls("GET") == []  # no coupon: the price id is enough
        off = await w.session({"resource": "remote", "couponCode": "SAVE20"})
        assert off.status_code == 200, off.text
        assert [c.path for c in w.fake.calls("GET")] == ["/v1/prices/price_remote"]
        assert w.fake.sessions[off.json()["sessionId"]]["amount_total"] == 1200


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"resource": "ebook", "couponCode": "CRYPTO10"}, 409, "coupon_wrong_payment_method"),
    ({"resource": "ebook", "couponCode": "NOPE"}, 404, "coupon_not_found"),
    ({"resource": "ebook", "couponCode": "OLD"}, 409, "coupon_expired"),
    ({"resource": "course", "couponCode": "EBOOKHALF"}, 409, "coupon_not_applicable"),
    ({"resource": "coins"}, 400, "invalid_resource"),
    ({"resource": "missing"}, 404, "resource_not_found"),
    ({"resource": ""}, 400, "missing_field"),
])
async def test_refusals_create_nothing_at_stripe(body: dict[str, str], status: int,
                                                 code: str) -> None:
    async with stripe_world() as w:
        resp = await w.session(body)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
        assert w.fake.requests == []


async def test_same_idempotency_key_replays_and_creates_one_session() -> None:
    async with stripe_world() as w:
        first = await w.session({"resource": "course"}, **{"Idempotency-Key": "order-1"})
        again = await w.session({"resource": "course"}, **{"Idempotency-Key": "order-1"})
        other = await w.session({"resource": "course"}, **{"Idempotency-Key": "order-2"})
        assert first.status_code == again.status_code == other.status_code == 200
        assert again.json() == first.json()
        assert again.headers["X-Idempotency-Replay"] == "true"
        assert "X-Idempotency-Replay" not in first.headers
        assert other.json()["sessionId"] != first.json()["sessionId"]
        assert len(w.fake.posts(SESSIONS)) == 2


CART = "/paywall/v1/cart/checkout"


async def test_cart_checkout_lines_quantities_and_metadata() -> None:
    async with stripe_world() as w:
        resp = await w.client.post(CART, json={
            "items": [{"priceId": "price_ebook", "quantity": 2},
                      {"resource": "course", "quantity": 1}],
            "customerEmail": "c@d.example", "metadata": {"cartRef": "x"}})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"sessionId", "url", "totalItems"} and body["totalItems"] == 3
        [call] = w.fake.posts(SESSIONS)
        assert call.params["line_items"] == [
            {"price": "price_ebook", "quantity": "2"},
            {"quantity": "1", "price_data": {"currency": "usd", "unit_amount": "2500",
                                             "product_data": {"name": "A course"}}}]
        meta = call.params["metadata"]
        assert meta["cartRef"] == "x" and meta["cart_items"] == "2"
        assert meta["total_quantity"] == "3" and meta["resource_id"].startswith("cart_")
        assert meta["item_0_resource"] == "ebook" and meta["item_1_quantity"] == "1"
        assert "discounts" not in call.params
        assert w.fake.sessions[body["sessionId"]]["amount_total"] == 4500


async def test_cart_checkout_coupon_on_every_item_is_applied() -> None:
    async with stripe_world() as w:
        pct = await w.client.post(CART, json={"couponCode": "SAVE20", "items": [
            {"resource": "ebook", "quantity": 2}, {"resource": "course"}]})
        assert pct.status_code == 200, pct.text
        assert w.fake.sessions[pct.json()["sessionId"]]["amount_total"] == 3600
        fixed = await w.client.post(CART, json={"couponCode": "FIVEOFF", "items": [
            {"resource": "ebook", "quantity": 2}, {"resource": "course"}]})
        assert fixed.status_code == 200, fixed.text
        [coupon_call] = w.fake.posts("/v1/coupons")
        assert coupon_call.params["amount_off"] == "500"
        assert coupon_call.params["currency"] == "usd"
        session = w.fake.sessions[fixed.json()["sessionId"]]
        assert session["amount_total"] == 4000
        assert session["metadata"]["coupon_code"] == "FIVEOFF"


@pytest.mark.parametrize(("coupon", "status", "code"), [
    ("EBOOKHALF", 409, "coupon_not_applicable"),  # only some items
    ("NOPE", 404, "coupon_not_found"),
    ("OLD", 409, "coupon_expired"),
    ("CRYPTO10", 409, "coupon_wrong_payment_method"),
])
async def test_cart_coupon_table(coupon: str, status: int, code: str) -> None:
    async with stripe_world() as w:
        resp = await w.client.post(CART, json={"couponCode": coupon, "items": [
            {"resource": "ebook"}, {"resource": "course"}]})
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
        assert w.fake.requests == []


async def test_cart_coupon_that_covers_every_item_is_accepted_even_if_specific() -> None:
    async with stripe_world() as w:
        resp = await w.client.post(CART, json={"couponCode": "EBOOKHALF", "items": [
            {"resource": "ebook", "quantity": 3}]})
        assert resp.status_code == 200, resp.text
        assert w.fake.sessions[resp.json()["sessionId"]]["amount_total"] == 1500
