"""GET /cedros-health (spec 02) and the app's request plumbing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from api.conftest import client_for, config_from

from cedros_pay.app import create_app
from cedros_pay.core.clock import ManualClock
from cedros_pay.storage.store import memory_store

HEALTH_KEYS = {"status", "uptime", "timestamp", "rpcHealthy", "routePrefix", "network",
               "features", "walletHealth"}


async def test_health_has_the_exact_spec_shape(rpc_node: str) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    cfg = config_from({"CEDROS_X402_RPC_URL": rpc_node})
    app = create_app(cfg, store=memory_store(), clock=clock)
    async with client_for(app) as client:
        clock.advance(timedelta(hours=12, minutes=30, seconds=45))
        resp = await client.get("/cedros-health")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == HEALTH_KEYS
    assert body["status"] == "ok"
    assert body["uptime"] == "12h30m45s"
    assert body["timestamp"] == "2026-01-01T12:30:45Z"
    assert body["network"] == "devnet"
    assert body["routePrefix"] == ""
    assert body["rpcHealthy"] is True
    assert body["features"] == ["x402"]
    assert body["walletHealth"] == {}


async def test_features_follow_the_configuration() -> None:
    cfg = config_from({"CEDROS_STRIPE_SECRET_KEY": "sk_test_x"})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        body = (await client.get("/cedros-health")).json()
    assert body["features"] == ["stripe", "x402"]


async def test_unreachable_rpc_makes_the_server_degraded() -> None:
    async with client_for(create_app(config_from(), store=memory_store())) as client:
        resp = await client.get("/cedros-health")
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["rpcHealthy"]) == ("degraded", False)


async def test_database_down_is_an_error_with_503() -> None:
    store = memory_store()

    async def broken() -> bool:
        raise ConnectionError("db gone")

    store.ping = broken
    async with client_for(create_app(config_from(), store=store)) as client:
        resp = await client.get("/cedros-health")
    assert resp.status_code == 503
    assert resp.json()["status"] == "error"


async def test_route_prefix_moves_the_endpoint() -> None:
    cfg = config_from({"CEDROS_ROUTE_PREFIX": "/api"})
    async with client_for(create_app(cfg, store=memory_store())) as client:
        moved = await client.get("/api/cedros-health")
        gone = await client.get("/cedros-health")
    assert moved.status_code == 200 and moved.json()["routePrefix"] == "/api"
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "resource_not_found"


async def test_request_id_is_generated_or_propagated() -> None:
    async with client_for(create_app(config_from(), store=memory_store())) as client:
        fresh = await client.get("/cedros-health")
        kept = await client.get("/cedros-health", headers={"X-Request-ID": "abc-123"})
        insane = await client.get("/cedros-health", headers={"X-Request-ID": "a b\tc"})
        long_id = await client.get("/cedros-health", headers={"X-Request-ID": "x" * 129})
    assert re.fullmatch(r"req_[0-9a-f]{32}", fresh.headers["X-Request-ID"])
    assert kept.headers["X-Request-ID"] == "abc-123"
    assert insane.headers["X-Request-ID"].startswith("req_")
    assert long_id.headers["X-Request-ID"].startswith("req_")


async def test_wrong_method_gets_the_error_envelope() -> None:
    async with client_for(create_app(config_from(), store=memory_store())) as client:
        resp = await client.post("/cedros-health")
    assert resp.status_code == 405
    assert set(resp.json()["error"]) >= {"code", "message", "details"}
