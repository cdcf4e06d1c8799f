"""Card refunds (issue 14): an admin opens the refund of a Stripe purchase, approval asks
the fake Stripe for it (official SDK, idempotency key from the refund id), and the refund
is processed once, whether Stripe confirms at once or by `charge.refunded`."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import orjson
from solders.keypair import Keypair
from stripe_world import StripeWorld, stripe_world

ADMIN = Keypair()
API_KEY = "card-refund-admin"
ENV = {"CEDROS_ADMIN_PUBLIC_KEY_1": str(ADMIN.pubkey()), "CEDROS_ADMIN_API_KEY_1": API_KEY,
       "CALLBACK_PAYMENT_SUCCESS_URL": "http://127.0.0.1:9/refunds"}


def approve_headers(refund_id: str, key: Keypair = ADMIN) -> dict[str, str]:
    message = f"approve-refund:{refund_id}"
    signature = base64.b64encode(bytes(key.sign_message(message.encode()))).decode()
    return {"X-Signer": str(key.pubkey()), "X-Signature": signature, "X-Message": message}


async def paid_purchase(w: StripeWorld) -> str:
    resp = await w.session({"resource": "ebook"})
    sid = str(resp.json()["sessionId"])
    _, paid = await w.pay(sid)
    assert paid.status_code == 200, paid.text
    return f"stripe:{sid}"


async def open_refund(w: StripeWorld, purchase: str, **body: Any) -> httpx.Response:
    return await w.client.post("/admin/refunds", json={
        "originalPurchaseId": purchase, "reason": "damaged", **body},
        headers={"Authorization": f"Bearer {API_KEY}"})


async def approve(w: StripeWorld, refund_id: str) -> httpx.Response:
    return await w.client.post("/paywall/v1/refunds/approve", json={"refundId": refund_id},
                               headers=approve_headers(refund_id))


async def refund_events(w: StripeWorld) -> list[dict[str, Any]]:
    items = await w.store.webhooks.list("default")
    return [orjson.loads(i.payload) for i in items if i.event_type == "refund.succeeded"]


async def test_a_card_refund_is_asked_of_stripe_and_processed_once() -> None:
    async with stripe_world(ENV) as w:
        purchase = await paid_purchase(w)
        opened = await open_refund(w, purchase, amount="4.5")
        assert opened.status_code == 201, opened.text
        refund_id = opened.json()["refundId"]
        assert opened.json()["status"] == "pending" and opened.json()["amount"] == 4.5
        again = await open_refund(w, purchase)
        assert again.status_code == 200 and again.json()["refundId"] == refund_id
        resp = await approve(w, refund_id)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["method"] == "stripe" and body["status"] == "processed"
        [call] = w.fake.posts("/v1/refunds")
        assert call.params["amount"] == "450"
        assert call.idempotency_key == f"cedros-refund-{refund_id}"
        assert call.params["payment_intent"].startswith("pi_")
        [event] = await refund_events(w)
        assert (event["refundId"], event["method"], event["atomicAmount"], event["token"],
                event["signature"]) == (refund_id, "stripe", 450, "USD", body["stripeRefundId"])
        assert (await approve(w, refund_id)).json()["error"]["code"] == (
            "refund_already_processed")
        # Stripe's webhook for the same refund changes nothing.
        payload = w.fake.event("charge.refunded",
                               w.fake.charge_refunded(body["stripeRefundId"]))
        assert (await w.deliver(payload)).status_code == 200
        assert len(await refund_events(w)) == 1
        assert len(w.fake.refunds) == 1
        assert (await open_refund(w, purchase)).json()["error"]["code"] == (
            "refund_already_processed")


async def test_stripe_failing_leaves_the_refund_approved_and_a_retry_counts_once() -> None:
    async with stripe_world(ENV) as w:
        purchase = await paid_purchase(w)
        refund_id = (await open_refund(w, purchase)).json()["refundId"]
        w.fake.fail(500, times=3)  # every SDK attempt of the first approval
        failed = await approve(w, refund_id)
        assert failed.status_code >= 400 and failed.json()["error"]["code"] == "stripe_error"
        stored = await w.store.refunds.get("default", refund_id)
        assert stored is not None and not stored.is_processed
        assert w.fake.refunds == {}
        retried = await approve(w, refund_id)
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "processed"
        keys = {c.idempotency_key for c in w.fake.posts("/v1/refunds")}
        assert keys == {f"cedros-refund-{refund_id}"}
        assert len(w.fake.refunds) == 1 and len(await refund_events(w)) == 1


async def test_a_pending_stripe_refund_completes_on_its_webhook_once() -> None:
    async with stripe_world(ENV) as w:
        w.fake.refund_status = "pending"
        purchase = await paid_purchase(w)
        refund_id = (await open_refund(w, purchase)).json()["refundId"]
        resp = await approve(w, refund_id)
        assert resp.json()["status"] == "approved", resp.text
        assert await refund_events(w) == []
        as_x402 = base64.b64encode(json.dumps({
            "x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
            "payload": {"transaction": "AAAA", "resource": refund_id,
                        "resourceType": "refund"}}).encode()).decode()
        paid = await w.client.post("/paywall/v1/verify", headers={"X-PAYMENT": as_x402})
        assert paid.json()["error"]["code"] == "invalid_resource"  # Stripe pays this one
        payload = w.fake.event("charge.refunded",
                               w.fake.charge_refunded(resp.json()["stripeRefundId"]))
        assert (await w.deliver(payload)).status_code == 200
        second = w.fake.event("charge.refunded",
                              w.fake.charge_refunded(resp.json()["stripeRefundId"]))
        assert (await w.deliver(second)).status_code == 200
        [event] = await refund_events(w)
        assert event["processedBy"] == "stripe" and event["atomicAmount"] == 1000
        stored = await w.store.refunds.get("default", refund_id)
        assert stored is not None and stored.is_processed


async def test_opening_a_card_refund_needs_admin_auth_and_a_card_purchase() -> None:
    async with stripe_world(ENV) as w:
        purchase = await paid_purchase(w)
        anonymous = await w.client.post("/admin/refunds", json={"originalPurchaseId": purchase})
        assert anonymous.status_code == 401
        wrong = await w.client.post("/admin/refunds", json={"originalPurchaseId": purchase},
                                    headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        unauthenticated_garbage = await w.client.post("/admin/refunds", content=b"{{")
        assert unauthenticated_garbage.status_code == 401  # credentials first
        assert (await open_refund(w, "someSolanaSignature")).json()["error"]["code"] == (
            "invalid_field")
        assert (await open_refund(w, "stripe:cs_missing")).json()["error"]["code"] == (
            "transaction_not_found")
        assert (await open_refund(w, purchase, amount="10.01")).json()["error"]["code"] == (
            "invalid_amount")
        assert (await open_refund(w, purchase, amount="0.001")).json()["error"]["code"] == (
            "invalid_amount")
        garbage = await w.client.post("/admin/refunds", content=b"{{",
                                      headers={"Authorization": f"Bearer {API_KEY}"})
        assert garbage.json()["error"]["code"] == "invalid_field"
        stranger = await w.client.post(
            "/paywall/v1/refunds/approve", json={"refundId": "refund_" + "a" * 32},
            headers=approve_headers("refund_" + "a" * 32, Keypair()))
        assert stranger.json()["error"]["code"] == "unauthorized_refund_issuer"
