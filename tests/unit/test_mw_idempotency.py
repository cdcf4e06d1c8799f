"""The idempotency middleware (spec 10): replay, 2xx only, scoping, concurrent repeats."""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.rest.middleware import (
    Gate,
    IdempotencyMiddleware,
    IdempotencyOptions,
    Tenant,
    TimeoutMiddleware,
    idempotent_routes,
)
from cedros_pay.rest.middleware.state import MemoryIdempotencyStore
from cedros_pay.rest.middleware.state.responses import CachedResponse

QUOTE = "/paywall/v1/cart/quote"
CHECKOUT = "/paywall/v1/cart/checkout"


class Handler:
    """Counts runs; answers with the run number, a chosen status, after a delay."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.runs = 0
        self.status = status
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.runs += 1
        run = self.runs
        await asyncio.sleep(self.delay)
        body = json.dumps({"run": run, "tenant": scope["state"].get("tenant")}).encode()
        await send({"type": "http.response.start", "status": self.status, "headers": [
            (b"content-type", b"application/json"), (b"location", b"/carts/1")]})
        await send({"type": "http.response.body", "body": body})


def guarded(handler: ASGIApp, store: MemoryIdempotencyStore | None = None,
            wait: float = 5.0) -> ASGIApp:
    options = IdempotencyOptions(routes=idempotent_routes(""), wait=wait, poll=0.01)
    app = IdempotencyMiddleware(handler, store=MemoryIdempotencyStore() if store is None else store,
                                options=options)
    return Gate(app, [Tenant()])


async def post(app: ASGIApp, path: str = QUOTE, key: str | None = "key-1",
               tenant: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    if tenant:
        headers["X-Tenant-ID"] = tenant
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.post(path, headers=headers, json={})


def test_the_spec_endpoints_are_protected() -> None:
    routes = idempotent_routes("/api")
    assert ("POST", "/api/paywall/v1/cart/quote") in routes
    assert ("POST", "/api/paywall/v1/cart/checkout") in routes
    assert ("POST", "/api/paywall/v1/stripe-session") in routes
    assert ("POST", "/api/paywall/v1/refunds/request") in routes
    assert ("POST", "/api/paywall/v1/subscription/x402/activate") in routes
    assert ("POST", "/api/paywall/v1/quote") not in routes  # 402 answers, nothing created


async def test_a_repeat_is_replayed_with_the_replay_header() -> None:
    handler = Handler(status=201)
    app = guarded(handler)
    first, again = await post(app), await post(app)
    assert handler.runs == 1
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["X-Idempotency-Replay"] == "true"
    assert again.headers["Location"] == "/carts/1"
    assert "x-idempotency-replay" not in first.headers


async def test_the_cache_key_is_method_path_key_within_the_tenant() -> None:
    store = MemoryIdempotencyStore()
    handler = Handler()
    app = guarded(handler, store)
    await post(app, QUOTE)
    await post(app, CHECKOUT)  # another path: its own entry
    await post(app, QUOTE, tenant="other")  # another tenant: never sees the first
    assert handler.runs == 3
    assert await store.get("default:POST:/paywall/v1/cart/quote:key-1") is not None
    assert (await post(app, QUOTE, tenant="other")).json()["tenant"] == "other"


async def test_only_2xx_responses_are_cached() -> None:
    handler = Handler(status=400)
    app = guarded(handler)
    await post(app)
    handler.status = 200
    ok = await post(app)
    assert handler.runs == 2 and "x-idempotency-replay" not in ok.headers
    assert (await post(app)).headers["X-Idempotency-Replay"] == "true"
    assert handler.runs == 2


async def test_requests_without_a_key_or_off_the_list_are_not_cached() -> None:
    handler = Handler()
    app = guarded(handler)
    await post(app, key=None)
    await post(app, key=None)
    await post(app, path="/paywall/v1/quote")
    await post(app, path="/paywall/v1/quote")
    assert handler.runs == 4


async def test_a_malformed_key_is_refused() -> None:
    resp = await post(guarded(Handler()), key="has space")
    assert resp.status_code == 400 and resp.json()["error"]["details"]["field"] == \
        "Idempotency-Key"


async def test_concurrent_repeats_wait_for_the_first_and_run_once() -> None:
    handler = Handler(delay=0.2)
    app = guarded(handler)
    responses = await asyncio.gather(*[post(app) for _ in range(5)])
    assert handler.runs == 1
    assert {r.json()["run"] for r in responses} == {1}
    assert sum(r.headers.get("X-Idempotency-Replay") == "true" for r in responses) == 4


async def test_a_repeat_that_cannot_wait_gets_409() -> None:
    handler = Handler(delay=0.3)
    app = guarded(handler, wait=0.05)
    first, second = await asyncio.gather(post(app), post(app))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409] and handler.runs == 1
    conflict = first if first.status_code == 409 else second
    assert conflict.json()["error"]["details"]["reason"] == "in_progress"


async def test_a_timed_out_request_frees_its_key_and_caches_nothing() -> None:
    store = MemoryIdempotencyStore()
    handler = Handler(delay=0.3)
    app = TimeoutMiddleware(guarded(handler, store), default=0.05)
    assert (await post(app)).status_code == 503
    handler.delay = 0.0
    retry = await post(app)
    assert retry.status_code == 200 and "x-idempotency-replay" not in retry.headers
    assert handler.runs == 2


class BrokenStore(MemoryIdempotencyStore):
    async def get(self, key: str) -> CachedResponse | None:
        raise ConnectionError("redis down")


async def test_an_unreachable_store_refuses_keyed_requests() -> None:
    handler = Handler()
    app = guarded(handler, BrokenStore())
    assert (await post(app)).status_code == 503
    assert (await post(app, key=None)).status_code == 200
    assert handler.runs == 1
