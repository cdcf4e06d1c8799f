"""The middleware chain through the real app: order, limits, replay, tenancy, metrics,
timeouts, recovery and graceful shutdown, for REST and GraphQL alike."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from api.conftest import CATALOG_YAML, client_for, config_from, free_port

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.core.models import CartQuote
from cedros_pay.storage.store import Store, memory_store

CATALOG = {"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml"}
CART = {"items": [{"resource": "p-article", "quantity": 1}]}
WALLET = "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ"


def make_app(tmp_path: Path, extra_yaml: str = "", env: Mapping[str, str] | None = None,
             store: Store | None = None) -> CedrosApp:
    path = tmp_path / "config.yaml"
    path.write_text(CATALOG_YAML + extra_yaml)
    cfg = config_from({**CATALOG, **(env or {})}, yaml_path=str(path))
    return create_app(cfg, store=memory_store() if store is None else store)


@dataclass
class SaveSignals:
    """What a recording store's slow cart save went through."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


def recording_store(delay: float = 0.0, fail: bool = False,
                    signals: SaveSignals | None = None) -> tuple[Store, list[CartQuote]]:
    """A memory store whose cart saves are counted, and optionally slow or failing;
    `signals` learns when a save starts and whether it was cancelled."""
    store = memory_store()
    saved: list[CartQuote] = []
    original = store.carts.save
    seen = signals or SaveSignals()

    async def save(quote: CartQuote) -> None:
        seen.entered.set()
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            seen.cancelled.set()
            raise
        if fail:
            raise RuntimeError("disk on fire")
        await original(quote)
        saved.append(quote)

    store.carts.save = save  # type: ignore[method-assign]
    return store, saved


SPEC10_SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                   "x-xss-protection": "1; mode=block",
                   "referrer-policy": "strict-origin-when-cross-origin"}


def assert_chain_headers(resp: httpx.Response) -> None:
    assert re.fullmatch(r"req_[0-9a-f]{32}", resp.headers["X-Request-ID"])
    for name, value in SPEC10_SECURITY.items():
        assert resp.headers[name] == value


# --- order and rate limits ---------------------------------------------------------------


async def test_a_rate_limited_request_still_gets_request_id_and_security_headers(
        tmp_path: Path) -> None:
    app = make_app(tmp_path, "rate_limit: {per_ip_limit: 2, per_ip_window: 1m}\n")
    async with client_for(app) as client:
        responses = [await client.get("/paywall/v1/products") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    refused = responses[2]
    assert_chain_headers(refused)
    assert refused.headers["X-API-Version"] == "1"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["Retry-After"] == "30"
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    assert responses[0].headers["X-RateLimit-Remaining"] == "1"


async def test_graphql_goes_through_the_same_chain(tmp_path: Path) -> None:
    app = make_app(tmp_path, "rate_limit: {per_ip_limit: 1}\n")
    async with client_for(app) as client:
        ok = await client.post("/graphql", json={"query": "{ products { totalCount } }"},
                               headers={"X-Request-ID": "gql-1"})
        refused = await client.post("/graphql", json={"query": "{ products { totalCount } }"})
    assert ok.status_code == 200 and ok.json()["data"]["products"]["totalCount"] == 3
    assert ok.headers["X-Request-ID"] == "gql-1" and ok.headers["X-API-Version"] == "1"
    assert refused.status_code == 429
    assert_chain_headers(refused)


async def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_reset_the_limit(
        tmp_path: Path) -> None:
    app = make_app(tmp_path, "rate_limit: {per_ip_limit: 2}\n")
    async with client_for(app) as client:
        codes = [(await client.get("/paywall/v1/products", headers={
            "X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"192.0.2.{i}"})).status_code
            for i in range(4)]
    assert codes == [200, 200, 429, 429]


async def test_a_trusted_proxy_forwards_each_clients_address(tmp_path: Path) -> None:
    app = make_app(tmp_path, "rate_limit: {per_ip_limit: 1}\n",
                   env={"CEDROS_TRUSTED_PROXIES": "127.0.0.1"})
    async with client_for(app) as client:
        codes = [(await client.get("/paywall/v1/products",
                                   headers={"X-Forwarded-For": f"198.51.100.{i % 3}"})).status_code
                 for i in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


async def test_partner_key_bypasses_every_limit(tmp_path: Path) -> None:
    app = make_app(tmp_path, "rate_limit: {global_limit: 1, per_ip_limit: 1}\n"
                   "api_key: {enabled: true, keys: {trusted-partner: partner}}\n")
    async with client_for(app) as client:
        partner = [await client.get("/paywall/v1/products",
                                    headers={"X-API-Key": "trusted-partner"}) for _ in range(3)]
        anonymous = [await client.get("/paywall/v1/products") for _ in range(2)]
    assert [r.status_code for r in partner] == [200, 200, 200]
    assert [r.status_code for r in anonymous] == [200, 429]


# --- idempotency ---------------------------------------------------------------------


async def test_cart_quote_is_replayed_for_the_same_idempotency_key(tmp_path: Path) -> None:
    store, saved = recording_store()
    async with client_for(make_app(tmp_path, store=store)) as client:
        key = {"Idempotency-Key": "order-42"}
        first = await client.post("/paywall/v1/cart/quote", json=CART, headers=key)
        again = await client.post("/paywall/v1/cart/quote", json=CART, headers=key)
        other = await client.post("/paywall/v1/cart/quote", json=CART,
                                  headers={"Idempotency-Key": "order-43"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["X-Idempotency-Replay"] == "true"
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert_chain_headers(again)
    assert other.json()["cartId"] != first.json()["cartId"]
    assert len(saved) == 2


async def test_concurrent_requests_with_one_key_create_one_cart(tmp_path: Path) -> None:
    store, saved = recording_store(delay=0.2)
    async with client_for(make_app(tmp_path, store=store)) as client:
        responses = await asyncio.gather(*[client.post(
            "/paywall/v1/cart/quote", json=CART, headers={"Idempotency-Key": "same"})
            for _ in range(6)])
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["cartId"] for r in responses}) == 1
    assert sum(r.headers.get("X-Idempotency-Replay") == "true" for r in responses) == 5
    assert len(saved) == 1


# --- tenancy -----------------------------------------------------------------------------


async def test_tenants_are_isolated_end_to_end(tmp_path: Path) -> None:
    store = memory_store()
    cart_query = "query($id: String!) { cart(id: $id) { id } }"
    async with client_for(make_app(tmp_path, store=store)) as client:
        acme = {"X-Tenant-ID": "acme"}
        created = await client.post("/paywall/v1/cart/quote", json=CART, headers=acme)
        cart_id = created.json()["cartId"]
        mine = await client.post("/graphql", headers=acme, json={
            "query": cart_query, "variables": {"id": cart_id}})
        theirs = await client.post("/graphql", json={
            "query": cart_query, "variables": {"id": cart_id}})
        # One Idempotency-Key in two tenants is two requests, never a replay across them.
        key = {"Idempotency-Key": "shared-key"}
        a = await client.post("/paywall/v1/cart/quote", json=CART, headers={**key, **acme})
        b = await client.post("/paywall/v1/cart/quote", json=CART,
                              headers={**key, "X-Tenant-ID": "globex"})
        bad = await client.get("/paywall/v1/products", headers={"X-Tenant-ID": "no/slash"})
    assert (await store.carts.get("acme", cart_id)) is not None
    assert (await store.carts.get("default", cart_id)) is None
    assert mine.json()["data"]["cart"]["id"] == cart_id
    assert theirs.json()["data"]["cart"] is None
    assert a.json()["cartId"] != b.json()["cartId"] and "x-idempotency-replay" not in b.headers
    assert (await store.carts.get("globex", b.json()["cartId"])) is not None
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_field"


# --- metrics ---------------------------------------------------------------------------


async def test_metrics_lists_spec14_names_with_route_templates(tmp_path: Path) -> None:
    async with client_for(make_app(tmp_path)) as client:
        await client.get("/paywall/v1/products")
        for i in range(3):
            await client.get(f"/no/such/path/{i}")
        resp = await client.get("/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert_chain_headers(resp)
    body = resp.text
    for name in ("http_requests_total", "http_request_duration_seconds",
                 "http_requests_in_flight", "payments_total", "payment_amount_cents",
                 "stripe_api_calls_total", "solana_rpc_calls_total", "webhooks_total",
                 "webhook_dlq_size", "rate_limit_rejections_total", "circuit_breaker_state",
                 "circuit_breaker_failures_total", "db_queries_total", "db_connections_open"):
        assert f"# TYPE {name} " in body, name
    assert 'http_requests_total{method="GET",path="/paywall/v1/products",status="200"} 1.0' \
        in body
    assert 'path="unmatched",status="404"} 3.0' in body
    assert "/no/such/path" not in body
    assert 'circuit_breaker_state{service="stripe_api"} 0.0' in body


async def test_metrics_need_the_admin_metrics_key_when_configured(tmp_path: Path) -> None:
    app = make_app(tmp_path, env={"CEDROS_ADMIN_METRICS_API_KEY": "scrape-me",
                                  "CEDROS_ROUTE_PREFIX": "/api"})
    async with client_for(app) as client:
        anonymous = await client.get("/api/metrics")
        wrong = await client.get("/api/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/api/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert right.status_code == 200 and "http_requests_total" in right.text


async def test_database_queries_are_counted_on_a_sql_store(tmp_path: Path) -> None:
    db = tmp_path / "cedros.db"
    path = tmp_path / "config.yaml"
    path.write_text(CATALOG_YAML + f"storage: {{backend: sqlite, file_path: '{db}'}}\n")
    app = create_app(config_from(CATALOG, yaml_path=str(path)))  # opens its own SQLite store
    async with client_for(app) as client:
        await client.post("/paywall/v1/cart/quote", json=CART)
        body = (await client.get("/metrics")).text
    assert re.search(r'db_queries_total\{operation="INSERT",table="cart_quotes"\} 1.0', body)
    assert 'db_query_duration_seconds_count{operation="INSERT",table="cart_quotes"}' in body
    assert "db_connections_open " in body


# --- CORS, versions, timeouts, recovery ---------------------------------------------------


async def test_cors_preflight_and_version_negotiation_through_the_app(tmp_path: Path) -> None:
    app = make_app(tmp_path, env={"CORS_ALLOWED_ORIGINS": "https://shop.example"})
    async with client_for(app) as client:
        pre = await client.options("/paywall/v1/cart/quote", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
        versioned = await client.get("/paywall/v1/products", headers={
            "Origin": "https://shop.example", "Accept": "application/vnd.cedros.v1+json"})
        unknown = await client.get("/paywall/v1/products", headers={"X-API-Version": "9"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert pre.headers["Access-Control-Max-Age"] == "300"
    assert versioned.headers["X-API-Version"] == "1"
    assert versioned.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert set(versioned.headers["Vary"].split(", ")) >= {"Origin", "Accept", "X-API-Version"}
    assert unknown.status_code == 400
    assert_chain_headers(unknown)


async def test_a_timed_out_payment_request_gets_the_envelope_and_writes_nothing(
        tmp_path: Path) -> None:
    signals = SaveSignals()
    store, saved = recording_store(delay=60, signals=signals)  # a save that never ends
    app = make_app(tmp_path, "server: {request_timeout: 100ms}\n", store=store)
    async with client_for(app) as client:
        resp = await client.post("/paywall/v1/cart/quote", json=CART,
                                 headers={"Idempotency-Key": "slow"})
        # The handler was cancelled inside the save, not left running to write later.
        await asyncio.wait_for(signals.cancelled.wait(), 10)
    assert resp.status_code == 503
    assert resp.json()["error"]["details"] == {"timeoutSeconds": 0.1}
    assert_chain_headers(resp)
    assert saved == []


async def test_an_unexpected_exception_is_a_500_envelope_without_internals(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, _ = recording_store(fail=True)
    with caplog.at_level(logging.ERROR):
        async with client_for(make_app(tmp_path, store=store)) as client:
            crashed = await client.post("/paywall/v1/cart/quote", json=CART)
            after = await client.get("/paywall/v1/products")
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    assert "disk on fire" not in crashed.text and "Traceback" not in crashed.text
    assert_chain_headers(crashed)
    assert "disk on fire" in caplog.text  # the traceback went to the log
    assert after.status_code == 200


# --- graceful shutdown -------------------------------------------------------------------


async def test_shutdown_finishes_requests_in_flight_then_stops_workers(
        tmp_path: Path) -> None:
    signals = SaveSignals()
    store, saved = recording_store(delay=0.5, signals=signals)
    app = make_app(tmp_path, store=store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on",
                                           log_config=None, timeout_graceful_shutdown=15))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no start event
        await asyncio.sleep(0.01)
    workers = list(app.workers)
    assert workers and all(w.running for w in workers)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        in_flight = asyncio.create_task(client.post("/paywall/v1/cart/quote", json=CART))
        await asyncio.wait_for(signals.entered.wait(), 10)  # inside the slow save
        server.should_exit = True
        resp = await in_flight
    await asyncio.wait_for(serving, timeout=15)
    assert resp.status_code == 200 and len(saved) == 1
    assert not any(w.running for w in workers)
    assert app.services is None

