"""The card mutations and Stripe payments over GraphQL: the same resolvers as REST."""

from __future__ import annotations

from api.test_graphql import ADMIN_ENV, BEARER, codes, graphql
from e2e.stripe_world import stripe_world

SESSION = """mutation($input: CheckoutSessionInput!) {
  createCheckoutSession(input: $input) { sessionId url } }"""
CART = """mutation($input: CartCheckoutInput!) {
  createCartCheckout(input: $input) { sessionId url totalItems } }"""
MONEY = "{ atomic decimals asset display }"
FIELDS = f"signature resource wallet method stripeSessionId amount {MONEY}"
LOOKUP = f"query($s: String!) {{ payment(signature: $s) {{ {FIELDS} }} }}"
LIST = f"""query($filter: PaymentFilterInput) {{ payments(first: 10, filter: $filter) {{
  edges {{ node {{ {FIELDS} }} }} totalCount }} }}"""


async def test_create_checkout_session_matches_rest_and_refuses_with_codes() -> None:
    async with stripe_world(ADMIN_ENV) as w:
        body = await graphql(w.client, SESSION, {"input": {
            "resource": "ebook", "couponCode": "SAVE20", "metadata": {"order": "g1"},
            "customerEmail": "g@q.example"}})
        assert "errors" not in body, body
        created = body["data"]["createCheckoutSession"]
        assert created["url"].endswith(created["sessionId"])
        [call] = w.fake.posts("/v1/checkout/sessions")
        assert call.params["line_items"][0]["price_data"]["unit_amount"] == "800"
        assert call.params["metadata"]["order"] == "g1"
        for code, expected in (("CRYPTO10", "coupon_wrong_payment_method"),
                               ("NOPE", "coupon_not_found"), ("OLD", "coupon_expired")):
            refused = await graphql(w.client, SESSION, {"input": {"resource": "ebook",
                                                                  "couponCode": code}})
            assert codes(refused) == [expected]
        missing = await graphql(w.client, SESSION, {"input": {"resource": "nope"}})
        assert codes(missing) == ["resource_not_found"]
        assert len(w.fake.requests) == 1


async def test_create_cart_checkout_and_its_coupon_table() -> None:
    async with stripe_world(ADMIN_ENV) as w:
        body = await graphql(w.client, CART, {"input": {"items": [
            {"priceId": "price_ebook", "quantity": 2}, {"resource": "course"}]}})
        assert "errors" not in body, body
        assert body["data"]["createCartCheckout"]["totalItems"] == 3
        partial = await graphql(w.client, CART, {"input": {"couponCode": "EBOOKHALF", "items": [
            {"resource": "ebook"}, {"resource": "course"}]}})
        assert codes(partial) == ["coupon_not_applicable"]
        empty = await graphql(w.client, CART, {"input": {"items": []}})
        assert codes(empty) == ["empty_cart"]
        assert len(w.fake.posts("/v1/checkout/sessions")) == 1


async def test_stripe_payments_in_payment_and_the_admin_listing() -> None:
    async with stripe_world(ADMIN_ENV) as w:
        created = await graphql(w.client, SESSION, {"input": {"resource": "course"}})
        sid = created["data"]["createCheckoutSession"]["sessionId"]
        _, paid = await w.pay(sid, email="card@holder.example")
        assert paid.status_code == 200
        found = (await graphql(w.client, LOOKUP, {"s": f"stripe:{sid}"}))["data"]["payment"]
        assert found == {
            "signature": f"stripe:{sid}", "resource": "course",
            "wallet": "card@holder.example", "method": "STRIPE", "stripeSessionId": sid,
            "amount": {"atomic": "2500", "decimals": 2, "asset": "USD",
                       "display": "25.00 USD"}}
        listing = await graphql(w.client, LIST, {"filter": {"method": "STRIPE"}},
                                headers=BEARER)
        assert "errors" not in listing, listing
        nodes = [e["node"] for e in listing["data"]["payments"]["edges"]]
        assert nodes == [found] and listing["data"]["payments"]["totalCount"] == 1
