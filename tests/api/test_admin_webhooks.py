"""Admin webhook queue over REST and GraphQL (issue 12): list / get / retry / delete, and
the auth refusals, checked before any lookup."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from api.conftest import client_for, config_from
from solders.keypair import Keypair
from support.webhook_receiver import WebhookReceiver

from cedros_pay.app import create_app
from cedros_pay.core.models import PendingWebhook
from cedros_pay.storage.store import Store, memory_store

ADMIN_KEY = "webhook-admin-key-0123456789abcdef"
SIGNER = Keypair()
BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}
EVENT = "evt_00112233445566778899aabb"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().up()
    yield r
    r.down()


@pytest.fixture
def store() -> Store:
    return memory_store()


@pytest.fixture
async def client(receiver: WebhookReceiver, store: Store, tmp_path: Path
                 ) -> AsyncIterator[httpx.AsyncClient]:
    yaml = tmp_path / "cfg.yaml"
    yaml.write_text(f"""
callbacks:
  payment_success_url: "{receiver.url}"
  poll_interval: 50ms
  timeout: 1s
  retry: {{max_attempts: 2, initial_interval: 50ms, max_interval: 100ms}}
""")
    cfg = config_from({"CEDROS_ADMIN_API_KEY_1": ADMIN_KEY,
                       "CEDROS_ADMIN_PUBLIC_KEY_1": str(SIGNER.pubkey())}, yaml_path=str(yaml))
    async with client_for(create_app(cfg, store=store)) as c:
        yield c


async def failed_item(store: Store, receiver: WebhookReceiver, n: int = 1) -> PendingWebhook:
    now = datetime.now(UTC)
    item = PendingWebhook(
        id=f"webhook_{n}", url=receiver.url, event_type="payment.succeeded", event_id=EVENT,
        payload=orjson.dumps({"eventId": EVENT, "eventType": "payment.succeeded",
                              "resourceId": "article"}).decode(),
        created_at=now - timedelta(minutes=n), next_attempt_at=now + timedelta(days=1),
        max_attempts=2)
    await store.webhooks.enqueue(item)
    return item


async def mark_failed(store: Store, webhook_id: str) -> None:
    """Fail an item for good, as the worker does after its last attempt."""
    got = await store.webhooks.get("default", webhook_id)
    assert got is not None
    await store.webhooks.mark_failed(webhook_id, "HTTP 500", datetime.now(UTC), None)


async def signed(client: httpx.AsyncClient, signer: Keypair = SIGNER) -> dict[str, str]:
    resp = await client.post("/paywall/v1/nonce", json={"purpose": "admin"})
    message = f"admin:{resp.json()['nonce']}"
    signature = base64.b64encode(bytes(signer.sign_message(message.encode()))).decode()
    return {"X-Signer": str(signer.pubkey()), "X-Signature": signature, "X-Message": message}


async def test_list_get_retry_delete(client: httpx.AsyncClient, store: Store,
                                     receiver: WebhookReceiver) -> None:
    item = await failed_item(store, receiver, 1)
    await failed_item(store, receiver, 2)
    await mark_failed(store, item.id)

    listed = await client.get("/admin/webhooks", headers=BEARER)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["count"] == 2 and [w["id"] for w in body["webhooks"]] == [
        "webhook_1", "webhook_2"]  # newest first
    failed = (await client.get("/admin/webhooks?status=failed&limit=5", headers=BEARER)).json()
    assert failed["count"] == 1
    [w] = failed["webhooks"]
    assert {k: w[k] for k in ("id", "status", "eventType", "eventId", "url", "attempts",
                              "lastError")} == {
        "id": "webhook_1", "status": "failed", "eventType": "payment.succeeded",
        "eventId": EVENT, "url": receiver.url, "attempts": 0, "lastError": "HTTP 500"}
    assert w["payload"] == {"eventId": EVENT, "eventType": "payment.succeeded",
                            "resourceId": "article"}
    assert w["createdAt"].endswith("Z") and "nextAttemptAt" in w

    one = await client.get("/admin/webhooks/webhook_1", headers=BEARER)
    assert one.status_code == 200 and one.json()["id"] == "webhook_1"

    retried = await client.post("/admin/webhooks/webhook_1/retry", headers=BEARER)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] in ("pending", "processing", "success")
    [got] = await receiver.arrived(1)
    assert got.json()["eventId"] == EVENT  # the same event id again
    assert got.headers["x-cedros-delivery-id"] == "webhook_1"

    gone = await client.delete("/admin/webhooks/webhook_2", headers=BEARER)
    assert gone.status_code == 200 and gone.json() == {"id": "webhook_2", "deleted": True}
    again = await client.get("/admin/webhooks/webhook_2", headers=BEARER)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert (await client.delete("/admin/webhooks/webhook_2", headers=BEARER)).status_code == 404
    assert (await client.post("/admin/webhooks/nope/retry", headers=BEARER)).status_code == 404


async def test_bad_query_values_are_400(client: httpx.AsyncClient) -> None:
    for query in ("status=lost", "limit=0", "limit=abc", "limit=100000"):
        resp = await client.get(f"/admin/webhooks?{query}", headers=BEARER)
        assert resp.status_code == 400, query
        assert resp.json()["error"]["code"] == "invalid_field"


async def test_refusals_come_before_any_lookup(client: httpx.AsyncClient, store: Store,
                                              receiver: WebhookReceiver) -> None:
    await failed_item(store, receiver, 1)
    calls: list[tuple[str, str]] = [
        ("GET", "/admin/webhooks"), ("GET", "/admin/webhooks/webhook_1"),
        ("GET", "/admin/webhooks/absent"), ("POST", "/admin/webhooks/webhook_1/retry"),
        ("DELETE", "/admin/webhooks/webhook_1"), ("DELETE", "/admin/webhooks/absent")]
    for method, path in calls:
        none = await client.request(method, path)
        assert none.status_code == 401 and none.json()["error"]["code"] == "unauthorized"
        wrong = await client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        stranger = await client.request(method, path, headers=await signed(client, Keypair()))
        assert stranger.status_code == 403, (method, path, stranger.text)
        assert stranger.json()["error"]["code"] == "forbidden"
    assert await store.webhooks.get("default", "webhook_1") is not None  # nothing deleted
    ok = await client.get("/admin/webhooks", headers=await signed(client))
    assert ok.status_code == 200 and ok.json()["count"] == 1


async def gql(client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None,
              **variables: Any) -> dict[str, Any]:
    resp = await client.post("/graphql", json={"query": query, "variables": variables},
                             headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


LIST = """query($first: Int, $after: String, $status: String) {
  webhookDeliveries(first: $first, after: $after, status: $status) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status eventId eventType attempts payload createdAt } } } }"""


async def test_graphql_deliveries_retry_and_delete(client: httpx.AsyncClient, store: Store,
                                                  receiver: WebhookReceiver) -> None:
    for n in (1, 2, 3):
        await failed_item(store, receiver, n)
    await mark_failed(store, "webhook_1")
    page = (await gql(client, LIST, BEARER, first=2))["data"]["webhookDeliveries"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    assert [e["node"]["id"] for e in page["edges"]] == ["webhook_1", "webhook_2"]
    assert page["edges"][0]["node"]["payload"]["resourceId"] == "article"
    rest = (await gql(client, LIST, BEARER, first=2, after=page["pageInfo"]["endCursor"])
            )["data"]["webhookDeliveries"]
    assert [e["node"]["id"] for e in rest["edges"]] == ["webhook_3"]
    failed = (await gql(client, LIST, BEARER, status="failed"))["data"]["webhookDeliveries"]
    assert [e["node"]["id"] for e in failed["edges"]] == ["webhook_1"]

    retried = await gql(client, 'mutation { retryWebhookDelivery(id: "webhook_1") '
                                "{ id eventId attempts } }", BEARER)
    assert retried["data"]["retryWebhookDelivery"]["eventId"] == EVENT
    await receiver.arrived(1)
    deleted = await gql(client, 'mutation { deleteWebhookDelivery(id: "webhook_3") '
                                "{ id deleted } }", BEARER)
    assert deleted["data"]["deleteWebhookDelivery"] == {"id": "webhook_3", "deleted": True}
    missing = await gql(client, 'mutation { deleteWebhookDelivery(id: "webhook_3") '
                                "{ id deleted } }", BEARER)
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["not_found"]

    refused = await gql(client, LIST)
    assert refused["data"]["webhookDeliveries"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["unauthorized"]
    refused_mutation = await gql(client, 'mutation { deleteWebhookDelivery(id: "webhook_2") '
                                         "{ id } }")
    assert [e["extensions"]["code"] for e in refused_mutation["errors"]] == ["unauthorized"]
    assert await store.webhooks.get("default", "webhook_2") is not None


async def test_metrics_show_queue_depth(client: httpx.AsyncClient, store: Store,
                                        receiver: WebhookReceiver) -> None:
    await failed_item(store, receiver, 1)
    await mark_failed(store, "webhook_1")
    await asyncio.sleep(0.2)
    text = (await client.get("/metrics")).text
    assert 'webhook_queue_size{status="failed"} 1.0' in text
    assert "webhook_dlq_size 1.0" in text
