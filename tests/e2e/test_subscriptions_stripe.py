"""Stripe-billed subscriptions against the fake Stripe: the session's shape, each webhook
event's effect (duplicates, stale events), change, cancel both ways, reactivate, portal."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api.test_graphql import ADMIN_ENV, BEARER, codes, graphql
from e2e.stripe_world import StripeWorld, stripe_world

from cedros_pay.core.models import Product, SubscriptionConfig
from cedros_pay.storage.store import memory_store

PLANS = [
    Product(id="basic", description="Basic monthly", fiat_amount=900, fiat_currency="usd",
            subscription=SubscriptionConfig(billing_period="month", billing_interval=1,
                                            stripe_price_id="price_basic")),
    Product(id="pro", description="Pro monthly", fiat_amount=1900, fiat_currency="usd",
            subscription=SubscriptionConfig(billing_period="month", billing_interval=1,
                                            stripe_price_id="price_pro", trial_days=7)),
]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    store = memory_store()
    for p in PLANS:
        await store.products.create(p)
    (tmp_path / "cfg.yaml").write_text("subscriptions:\n  enabled: true\n")
    async with stripe_world(ADMIN_ENV, store=store, yaml_path=str(tmp_path / "cfg.yaml")) as w:
        w.fake.add_price("price_basic", 900)
        w.fake.add_price("price_pro", 1900)
        yield w


async def post(w: StripeWorld, path: str, body: dict[str, Any]) -> Any:
    return await w.client.post(f"/paywall/v1/subscription/{path}", json=body)


async def subscribe(w: StripeWorld) -> tuple[str, str]:
    resp = await post(w, "stripe-session", {"resource": "basic", "interval": "monthly",
                                            "metadata": {"user": "u1"}})
    assert resp.status_code == 200, resp.text
    sid = resp.json()["sessionId"]
    session = w.fake.start_subscription(sid)
    delivered = await w.deliver(w.fake.event("checkout.session.completed", session))
    assert delivered.status_code == 200, delivered.text
    return session["subscription"], session["customer"]


async def status(w: StripeWorld, user: str, resource: str = "basic") -> Any:
    return (await w.client.get("/paywall/v1/subscription/status",
                               params={"userId": user, "resource": resource})).json()


async def test_session_is_subscription_mode_with_metadata_on_the_subscription(
        world: StripeWorld) -> None:
    resp = await post(world, "stripe-session", {
        "resource": "pro", "interval": "monthly", "customerEmail": "a@b.example",
        "metadata": {"user": "u1"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["sessionId"].startswith("cs_") and resp.json()["url"]
    (call,) = world.fake.posts("/v1/checkout/sessions")
    p = call.params
    assert p["mode"] == "subscription"
    assert p["line_items"][0]["price"] == "price_pro"
    meta = p["subscription_data"]["metadata"]
    assert (meta["product_id"], meta["tenant_id"], meta["user"]) == ("pro", "default", "u1")
    assert p["subscription_data"]["trial_period_days"] == "7"  # the product's trial
    assert p["customer_email"] == "a@b.example"


async def test_webhook_events_drive_the_local_record(world: StripeWorld) -> None:
    sub_id, customer = await subscribe(world)
    remote = world.fake.subscriptions[sub_id]
    st = await status(world, customer)
    assert st["active"] is True and st["status"] == "active"
    expected_end = datetime.fromtimestamp(remote["current_period_end"], UTC)
    assert st["currentPeriodEnd"] == expected_end.strftime("%Y-%m-%dT%H:%M:%SZ")

    # customer.subscription.created for the same subscription: no second record
    created = world.fake.event("customer.subscription.created", remote)
    assert (await world.deliver(created)).status_code == 200
    assert len(await world.store.subscriptions.list_by_stripe_customer_id(
        "default", customer)) == 1

    # invoice.payment_failed -> past_due (still active), then invoice.paid -> next period
    start, end = remote["current_period_end"], remote["current_period_end"] + 30 * 86400
    failed = world.fake.event("invoice.payment_failed",
                              world.fake.invoice(sub_id, start, end, paid=False))
    assert (await world.deliver(failed)).status_code == 200
    st = await status(world, customer)
    assert (st["status"], st["active"]) == ("past_due", True)
    paid = world.fake.event("invoice.paid", world.fake.invoice(sub_id, start, end))
    assert (await world.deliver(paid)).status_code == 200
    assert (await world.deliver(paid)).json()["duplicate"] is True
    again = world.fake.event("invoice.paid", world.fake.invoice(sub_id, start, end))
    assert (await world.deliver(again)).status_code == 200  # same invoice, new event id
    st = await status(world, customer)
    assert st["status"] == "active"
    assert st["currentPeriodEnd"] == datetime.fromtimestamp(end, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    # a newer updated, then a stale one: the stale one never moves the period back
    now = int(time.time())
    newer = json.loads(json.dumps(remote))
    newer.update({"current_period_start": start, "current_period_end": end,
                  "cancel_at_period_end": True})
    stale = json.loads(json.dumps(remote))
    stale["status"] = "past_due"
    assert (await world.deliver(world.fake.event("customer.subscription.updated", newer,
                                                 created=now + 5))).status_code == 200
    assert (await world.deliver(world.fake.event("customer.subscription.updated", stale,
                                                 created=now + 1))).status_code == 200
    st = await status(world, customer)
    assert (st["status"], st["cancelAtPeriodEnd"]) == ("active", True)
    assert st["currentPeriodEnd"] == datetime.fromtimestamp(end, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    gone = dict(newer, status="canceled")
    assert (await world.deliver(world.fake.event("customer.subscription.deleted", gone,
                                                 created=now + 9))).status_code == 200
    st = await status(world, customer)
    assert (st["status"], st["active"]) == ("cancelled", False)


async def test_change_cancel_reactivate_and_portal(world: StripeWorld) -> None:
    sub_id, customer = await subscribe(world)
    item = world.fake.subscriptions[sub_id]["items"]["data"][0]["id"]
    resp = await post(world, "change", {"subscriptionId": sub_id, "newResource": "pro",
                                        "prorationBehavior": "always_invoice"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["previousResource"], body["newResource"], body["prorationBehavior"]) == (
        "basic", "pro", "always_invoice")
    assert body["subscriptionId"] == sub_id and body["status"] == "active"
    (call,) = world.fake.posts(f"/v1/subscriptions/{sub_id}")
    assert call.params["items"][0] == {"id": item, "price": "price_pro"}
    assert call.params["proration_behavior"] == "always_invoice"
    assert (await status(world, customer, "pro"))["active"] is True

    resp = await post(world, "cancel", {"subscriptionId": sub_id, "atPeriodEnd": True})
    assert resp.status_code == 200 and resp.json()["atPeriodEnd"] is True
    assert world.fake.subscriptions[sub_id]["cancel_at_period_end"] is True
    st = await status(world, customer, "pro")
    assert (st["active"], st["cancelAtPeriodEnd"]) == (True, True)

    resp = await post(world, "reactivate", {"subscriptionId": sub_id})
    assert resp.status_code == 200
    assert resp.json()["cancelAtPeriodEnd"] is False and resp.json()["subscriptionId"] == sub_id
    assert world.fake.subscriptions[sub_id]["cancel_at_period_end"] is False

    resp = await post(world, "cancel", {"subscriptionId": sub_id, "atPeriodEnd": False})
    assert resp.status_code == 200
    assert world.fake.subscriptions[sub_id]["status"] == "canceled"
    assert (await status(world, customer, "pro"))["active"] is False
    assert world.fake.calls("DELETE", f"/v1/subscriptions/{sub_id}")

    resp = await post(world, "portal", {"customerId": customer,
                                        "returnUrl": "https://shop.example/account"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["url"].startswith("https://billing.stripe.com/p/session/bps_")
    (portal,) = world.fake.posts("/v1/billing_portal/sessions")
    assert portal.params == {"customer": customer, "return_url": "https://shop.example/account"}


async def test_stripe_errors_are_spec_codes(world: StripeWorld) -> None:
    resp = await post(world, "change", {"subscriptionId": "sub_missing",
                                        "newResource": "pro"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    sub_id, _ = await subscribe(world)
    world.fake.fail(400)
    resp = await post(world, "cancel", {"subscriptionId": sub_id, "atPeriodEnd": False})
    assert resp.json()["error"]["code"] == "stripe_error"


STATUS = """query($u: String!, $r: String!) { subscriptionStatus(userId: $u, resource: $r) {
  active status expiresAt currentPeriodEnd interval cancelAtPeriodEnd } }"""
LIST = """query($f: SubscriptionFilterInput, $after: String) {
  subscriptions(first: 1, after: $after, filter: $f) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id productId userId rail status billingPeriod } } } }"""
CHECKOUT = """mutation($i: SubscriptionCheckoutInput!) {
  createSubscriptionCheckout(input: $i) { sessionId url } }"""
CANCEL = """mutation($id: String!, $end: Boolean!) {
  cancelSubscription(subscriptionId: $id, atPeriodEnd: $end) {
    success subscriptionId status cancelAtPeriodEnd } }"""
REACTIVATE = """mutation($id: String!) { reactivateSubscription(subscriptionId: $id) {
  subscriptionId cancelAtPeriodEnd } }"""
CHANGE = """mutation($id: String!, $to: String!) { changeSubscription(subscriptionId: $id,
  newResource: $to, prorationBehavior: "none") { previousResource newResource
  prorationBehavior } }"""


async def test_graphql_shares_the_rest_resolvers(world: StripeWorld) -> None:
    body = await graphql(world.client, CHECKOUT, {"i": {"resource": "basic",
                                                        "interval": "monthly"}})
    session_id = body["data"]["createSubscriptionCheckout"]["sessionId"]
    (call,) = world.fake.posts("/v1/checkout/sessions")
    assert call.params["mode"] == "subscription"
    session = world.fake.start_subscription(session_id)
    await world.deliver(world.fake.event("checkout.session.completed", session))
    sub_id, customer = session["subscription"], session["customer"]

    st = (await graphql(world.client, STATUS, {"u": customer, "r": "basic"}))["data"]
    assert st["subscriptionStatus"]["active"] is True
    assert st["subscriptionStatus"]["interval"] == "monthly"
    missing = await graphql(world.client, STATUS, {"u": "cus_nobody", "r": "basic"})
    assert codes(missing) == ["not_found"]

    refused = await graphql(world.client, LIST, {})
    assert codes(refused) == ["unauthorized"]
    listed = (await graphql(world.client, LIST, {"f": {"rail": "stripe"}},
                            headers=BEARER))["data"]["subscriptions"]
    assert listed["totalCount"] == 1
    assert listed["edges"][0]["node"] == {"id": sub_id, "productId": "basic",
                                          "userId": customer, "rail": "stripe",
                                          "status": "active", "billingPeriod": "month"}
    none = await graphql(world.client, LIST, {"f": {"rail": "x402"}}, headers=BEARER)
    assert none["data"]["subscriptions"]["totalCount"] == 0
    bad = await graphql(world.client, LIST, {"f": {"status": "sleeping"}}, headers=BEARER)
    assert codes(bad) == ["invalid_field"]

    changed = await graphql(world.client, CHANGE, {"id": sub_id, "to": "pro"})
    assert changed["data"]["changeSubscription"] == {
        "previousResource": "basic", "newResource": "pro", "prorationBehavior": "none"}
    cancelled = await graphql(world.client, CANCEL, {"id": sub_id, "end": True})
    assert cancelled["data"]["cancelSubscription"]["cancelAtPeriodEnd"] is True
    back = await graphql(world.client, REACTIVATE, {"id": sub_id})
    assert back["data"]["reactivateSubscription"] == {"subscriptionId": sub_id,
                                                      "cancelAtPeriodEnd": False}
    gone = await graphql(world.client, CANCEL, {"id": sub_id, "end": False})
    assert gone["data"]["cancelSubscription"]["status"] == "cancelled"
    unknown = await graphql(world.client, CANCEL, {"id": "sub_nope", "end": False})
    assert codes(unknown) == ["not_found"]
