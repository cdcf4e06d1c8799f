"""A stranger cannot cancel someone's x402 subscription: its id is derivable from the
public payment signature and `x402/activate` answers it for any wallet address, so REST
and GraphQL cancel/reactivate want the subscriber's signature (or an admin's)."""

from __future__ import annotations

import uuid

import pytest
from e2e.test_subscriptions_x402 import World, signed, world  # noqa: F401  (the fixture)
from solders.keypair import Keypair

from cedros_pay.resolvers.subscriptions import payment_subscription_id

CANCEL = """mutation($id: String!, $end: Boolean!) {
  cancelSubscription(subscriptionId: $id, atPeriodEnd: $end) { status cancelAtPeriodEnd } }"""
# The borrowed fixture's sandbox runs on the module's event loop: so must the test.
pytestmark = pytest.mark.asyncio(loop_scope="module")

REACTIVATE = """mutation($id: String!) {
  reactivateSubscription(subscriptionId: $id) { cancelAtPeriodEnd } }"""


async def test_a_stranger_learns_the_id_but_cannot_cancel(world: World) -> None:  # noqa: F811
    signature = await world.pay(2_000_000)
    assert (await world.activate(signature)).status_code == 200
    # What a stranger can learn without any key: the id, two ways.
    probe = await world.client.post("/paywall/v1/subscription/x402/activate",
                                    json={"productId": "monthly", "wallet": world.wallet})
    sub_id = probe.json()["subscriptionId"]
    assert sub_id == payment_subscription_id("default", signature)
    assert uuid.UUID(sub_id).version == 5

    stamp = int(world.clock.now().timestamp())
    stranger = Keypair()
    attempts = [
        ({}, 401, "unauthorized"),
        (signed(stranger, f"cancel-subscription-now:{sub_id}:{stamp}"), 403, "forbidden"),
        (signed(world.sandbox.wallets.payer, f"subscription:monthly:{stamp}"), 401,
         "unauthorized"),  # a captured free pass
        (signed(world.sandbox.wallets.payer, f"cancel-subscription:{sub_id}:{stamp}"), 401,
         "unauthorized"),  # signed for "at period end", replayed as "now"
    ]
    for headers, status, code in attempts:
        resp = await world.client.post("/paywall/v1/subscription/cancel", headers=headers,
                                       json={"subscriptionId": sub_id, "atPeriodEnd": False})
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
        gql = await world.client.post("/graphql", headers=headers, json={
            "query": CANCEL, "variables": {"id": sub_id, "end": False}})
        assert (gql.json()["data"] or {}).get("cancelSubscription") is None
        assert gql.json()["errors"][0]["extensions"]["code"] == code
    status = (await world.status()).json()
    assert (status["status"], status["cancelAtPeriodEnd"]) == ("active", False)
    assert [e.event_type for e in world.notes.subs] == ["subscription.created"]

    # The subscriber over GraphQL, and the merchant wallet as an admin over REST.
    payer = world.sandbox.wallets.payer
    mine = await world.client.post("/graphql", json={
        "query": CANCEL, "variables": {"id": sub_id, "end": True}},
        headers=signed(payer, f"cancel-subscription:{sub_id}:{stamp}"))
    assert mine.json()["data"]["cancelSubscription"]["cancelAtPeriodEnd"] is True, mine.text
    nonce = (await world.client.post("/paywall/v1/nonce", json={"purpose": "admin"})
             ).json()["nonce"]
    merchant = world.sandbox.wallets.merchant
    back = await world.client.post("/paywall/v1/subscription/reactivate",
                                   json={"subscriptionId": sub_id},
                                   headers=signed(merchant, f"admin:{nonce}"))
    assert back.status_code == 200 and back.json()["cancelAtPeriodEnd"] is False, back.text
    again = await world.client.post("/graphql", json={
        "query": REACTIVATE, "variables": {"id": sub_id}},
        headers=signed(merchant, f"admin:{nonce}"))  # the nonce is spent
    assert again.json()["errors"][0]["extensions"]["code"] == "unauthorized"
