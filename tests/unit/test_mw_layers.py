"""Each middleware of spec 10 on its own, around a tiny app that echoes the request state."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.logs import JsonFormatter
from cedros_pay.rest.middleware import (
    AccessLogMiddleware,
    APIKey,
    APIVersion,
    CORSMiddleware,
    Deprecation,
    Gate,
    RealIPMiddleware,
    RecoveryMiddleware,
    RequestIdMiddleware,
    SecurityHeaders,
    TimeoutMiddleware,
    discovery_paths,
)

WALLET = "7cVfgArCheMR6Cs4t6vz5rfnqd3CUjpTQZ5Np1jVcpXQ"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the request state the middleware left behind."""
    st = scope.get("state", {})
    body = json.dumps({k: st.get(k) for k in (
        "request_id", "client_ip", "forwarded_proto", "tenant", "api_tier", "api_version")}
        | {"client": list(scope["client"]) if scope.get("client") else None}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def call(app: ASGIApp, method: str = "GET", path: str = "/", *,
               headers: Mapping[str, str] | None = None,
               client: tuple[str, int] = ("203.0.113.7", 4321),
               base: str = "http://testserver") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        return await c.request(method, path, headers=headers)


# --- request id ------------------------------------------------------------------------


async def test_request_id_generated_or_propagated_and_in_state() -> None:
    app = RequestIdMiddleware(echo)
    fresh = await call(app)
    assert re.fullmatch(r"req_[0-9a-f]{32}", fresh.headers["X-Request-ID"])
    assert fresh.json()["request_id"] == fresh.headers["X-Request-ID"]
    kept = await call(app, headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    assert (await call(app, headers={"X-Request-ID": "bad id"})).headers[
        "X-Request-ID"].startswith("req_")


# --- real ip ---------------------------------------------------------------------------


async def test_forwarding_headers_from_an_untrusted_peer_are_ignored() -> None:
    app = RealIPMiddleware(echo, trusted_proxies=["10.0.0.0/8"])
    spoofed = await call(app, headers={"X-Forwarded-For": "1.1.1.1", "X-Real-IP": "2.2.2.2",
                                       "X-Forwarded-Proto": "https"})
    assert spoofed.json()["client_ip"] == "203.0.113.7"
    assert spoofed.json()["forwarded_proto"] is None


async def test_loopback_is_not_trusted_by_default() -> None:
    app = RealIPMiddleware(echo)
    resp = await call(app, headers={"X-Forwarded-For": "1.1.1.1"}, client=("127.0.0.1", 1))
    assert resp.json()["client_ip"] == "127.0.0.1"


async def test_trusted_proxy_gives_the_rightmost_untrusted_address() -> None:
    app = RealIPMiddleware(echo, trusted_proxies=["10.0.0.0/8", "192.168.1.1"])
    proxy = ("10.1.2.3", 80)
    honest = await call(app, headers={"X-Forwarded-For": "198.51.100.9, 192.168.1.1"},
                        client=proxy)
    assert honest.json()["client_ip"] == "198.51.100.9"
    assert honest.json()["client"] == ["198.51.100.9", 0]
    # The client wrote "1.1.1.1" itself; the proxy appended the address it really saw.
    forged = await call(app, headers={"X-Forwarded-For": "1.1.1.1, 198.51.100.9"},
                        client=proxy)
    assert forged.json()["client_ip"] == "198.51.100.9"
    real_ip = await call(app, headers={"X-Real-IP": "198.51.100.10",
                                       "X-Forwarded-Proto": "https"}, client=proxy)
    assert real_ip.json()["client_ip"] == "198.51.100.10"
    assert real_ip.json()["forwarded_proto"] == "https"
    garbage = await call(app, headers={"X-Forwarded-For": "not-an-ip"}, client=proxy)
    assert garbage.json()["client_ip"] == "10.1.2.3"
    v6 = await call(app, headers={"X-Forwarded-For": "[2001:db8::1]:443"}, client=proxy)
    assert v6.json()["client_ip"] == "2001:db8::1"


# --- access log ------------------------------------------------------------------------


class JsonLines(logging.Handler):
    """Formats at emit time, as the real handler does (the request id is context-bound)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_access_log_line_has_spec14_fields_and_a_truncated_wallet() -> None:
    app = RequestIdMiddleware(RealIPMiddleware(AccessLogMiddleware(echo)))
    logger = logging.getLogger("cedros_pay.access")
    handler, level = JsonLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        resp = await call(app, path=f"/x?wallet={WALLET}", headers={"User-Agent": "agent/1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    (line,) = handler.lines
    assert line["request_id"] == resp.headers["X-Request-ID"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/x", 200)
    assert line["remote_ip"] == "203.0.113.7" and line["user_agent"] == "agent/1"
    assert line["wallet"] == "7cVf...pXQ" and isinstance(line["duration_ms"], float)
    assert WALLET not in json.dumps(line)


# --- CORS, security headers --------------------------------------------------------------


async def test_cors_for_configured_origins_only() -> None:
    app = CORSMiddleware(echo, ["https://shop.example"])
    ok = await call(app, headers={"Origin": "https://shop.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert ok.headers["Access-Control-Expose-Headers"] == (
        "Location, PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE")
    assert "Origin" in ok.headers["Vary"]
    assert "access-control-allow-credentials" not in ok.headers
    other = await call(app, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_cors_preflight_is_answered_with_spec10_values() -> None:
    app = CORSMiddleware(echo, ["*"])
    resp = await call(app, "OPTIONS", headers={
        "Origin": "https://any.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-Wallet, Idempotency-Key"})
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert resp.headers["Access-Control-Allow-Headers"] == "X-Wallet, Idempotency-Key"
    assert resp.headers["Access-Control-Max-Age"] == "300"
    assert resp.headers["X-Frame-Options"] == "DENY"  # preflights get them too


async def test_no_cors_headers_without_configured_origins() -> None:
    resp = await call(CORSMiddleware(echo, []), headers={"Origin": "https://a.example"})
    assert "access-control-allow-origin" not in resp.headers


async def test_security_headers_and_hsts_only_over_https() -> None:
    app = Gate(echo, [SecurityHeaders()])
    plain = await call(app)
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    assert plain.headers["X-Frame-Options"] == "DENY"
    assert plain.headers["X-XSS-Protection"] == "1; mode=block"
    assert plain.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in plain.headers
    secure = await call(app, base="https://testserver")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    proxied = await call(RealIPMiddleware(app, ["10.0.0.1"]), client=("10.0.0.1", 1),
                         headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" in proxied.headers
    spoofed = await call(RealIPMiddleware(app, ["10.0.0.1"]),
                         headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in spoofed.headers


# --- API version -------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "version"), [
    ({}, 1),
    ({"X-API-Version": "2"}, 2),
    ({"X-API-Version": "v1"}, 1),
    ({"Accept": "application/vnd.cedros.v2+json"}, 2),
    ({"Accept": "text/html, application/json; version=2"}, 2),
    ({"Accept": "application/vnd.cedros.v2+json", "X-API-Version": "1"}, 1),
    # Prometheus' Accept header is not a request for API version 0.
    ({"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4"}, 1),
])
async def test_api_version_forms(headers: dict[str, str], version: int) -> None:
    app = Gate(echo, [APIVersion(current=1, supported=(1, 2))])
    resp = await call(app, headers=headers)
    assert resp.status_code == 200
    assert resp.json()["api_version"] == version
    assert resp.headers["X-API-Version"] == str(version)
    assert resp.headers["Vary"] == "Accept, X-API-Version"
    assert "deprecation" not in resp.headers


async def test_deprecated_version_gets_deprecation_and_sunset() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    sunset = datetime(2026, 7, 1, tzinfo=UTC)
    app = Gate(echo, [APIVersion(current=2, supported=(1, 2), deprecated={
        1: Deprecation(since, sunset, "https://docs.example/v2")})])
    resp = await call(app, headers={"X-API-Version": "1"})
    assert resp.headers["Deprecation"] == f"@{int(since.timestamp())}"
    assert resp.headers["Sunset"] == "Wed, 01 Jul 2026 00:00:00 GMT"
    assert resp.headers["Link"] == '<https://docs.example/v2>; rel="deprecation"'
    assert "deprecation" not in (await call(app)).headers


@pytest.mark.parametrize("value", ["3", "latest"])
async def test_unsupported_or_unreadable_version_is_a_400_envelope(value: str) -> None:
    resp = await call(Gate(echo, [APIVersion()]), headers={"X-API-Version": value})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_field"
    assert resp.json()["error"]["details"]["supported"] == [1]


# --- API key tiers ---------------------------------------------------------------------------


async def test_api_key_sets_the_tier_and_unknown_keys_are_free() -> None:
    keys = {"k-partner": "partner", "k-ent": "enterprise", "k-pro": "pro"}
    app = Gate(echo, [APIKey(enabled=True, keys=keys)])
    assert (await call(app, headers={"X-API-Key": "k-partner"})).json()["api_tier"] == "partner"
    assert (await call(app, headers={"X-API-Key": "k-ent"})).json()["api_tier"] == "enterprise"
    assert (await call(app, headers={"X-API-Key": "nope"})).json()["api_tier"] == "free"
    assert (await call(app)).json()["api_tier"] == "free"
    off = Gate(echo, [APIKey(enabled=False, keys=keys)])
    assert (await call(off, headers={"X-API-Key": "k-partner"})).json()["api_tier"] == "free"


# --- timeout -------------------------------------------------------------------------------


async def test_timeout_cancels_the_handler_and_answers_with_the_envelope() -> None:
    writes: list[str] = []
    cancelled = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(60)  # far past any deadline: only cancellation ends it
        except asyncio.CancelledError:
            cancelled.set()
            raise
        writes.append("late write")  # must never happen

    app = TimeoutMiddleware(slow, default=0.1, short=0.05)
    resp = await call(app, "POST", "/paywall/v1/cart/quote")
    assert resp.status_code == 503
    assert resp.json()["error"]["details"] == {"timeoutSeconds": 0.1}
    assert cancelled.is_set()
    await asyncio.sleep(0.1)
    assert writes == []


async def test_discovery_routes_get_the_short_deadline() -> None:
    async def slowish(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.3)
        await echo(scope, receive, send)

    # 0.3 s of work: three times the short deadline, a hundredth of the long one.
    app = TimeoutMiddleware(slowish, default=30.0, short=0.1, is_short=discovery_paths("/api"))
    assert (await call(app, path="/api/cedros-health")).status_code == 503
    assert (await call(app, path="/api/.well-known/payment-options")).status_code == 503
    assert (await call(app, path="/api/paywall/v1/products")).status_code == 200


async def test_a_started_response_is_let_finish() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b"done"})

    resp = await call(TimeoutMiddleware(streaming, default=0.05), path="/x")
    assert resp.status_code == 200 and resp.text == "done"


# --- recovery ------------------------------------------------------------------------------


async def test_recovery_turns_an_exception_into_a_500_envelope(
        caplog: pytest.LogCaptureFixture) -> None:
    async def crash(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("secret internals")

    app = RecoveryMiddleware(RequestIdMiddleware(crash))
    with caplog.at_level(logging.ERROR, "cedros_pay.recovery"):
        resp = await call(app)
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in resp.text
    assert resp.headers["X-Request-ID"].startswith("req_")
    assert resp.headers["X-Frame-Options"] == "DENY"
    record = next(r for r in caplog.records if r.name == "cedros_pay.recovery")
    assert record.exc_info is not None and "secret internals" in caplog.text
    # The server keeps serving.
    assert (await call(RecoveryMiddleware(echo))).status_code == 200
