"""The idempotency middleware (spec 10, as Stripe does it): replay bound to the request's
fingerprint, 2xx only, tenant scoping, concurrent repeats, an unreachable store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
from cedros_pay.rest.middleware.idempotency import fingerprint
from cedros_pay.rest.middleware.state import MemoryIdempotencyStore
from cedros_pay.rest.middleware.state.responses import CachedResponse
from cedros_pay.rest.routes import build_routes

QUOTE = "/paywall/v1/cart/quote"
CHECKOUT = "/paywall/v1/cart/checkout"
BODY: dict[str, Any] = {"items": [{"resource": "p1", "quantity": 1}]}


class Handler:
    """Counts runs; answers with the run number and the body it read, with a chosen
    status; while `gate` is set to an unset event, each run waits for it."""

    def __init__(self, status: int = 200) -> None:
        self.runs = 0
        self.status = status
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.delay = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.runs += 1
        run = self.runs
        message = await receive()
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        body = json.dumps({"run": run, "tenant": scope["state"].get("tenant"),
                           "got": json.loads(message.get("body") or b"null")}).encode()
        await send({"type": "http.response.start", "status": self.status, "headers": [
            (b"content-type", b"application/json"), (b"location", b"/carts/1")]})
        await send({"type": "http.response.body", "body": body})


def guarded(handler: ASGIApp, store: MemoryIdempotencyStore | None = None,
            wait: float = 5.0, max_request: int = 1 << 20) -> ASGIApp:
    options = IdempotencyOptions(routes=idempotent_routes(build_routes("")), wait=wait,
                                 poll=0.01, max_request=max_request)
    app = IdempotencyMiddleware(handler, store=MemoryIdempotencyStore() if store is None else store,
                                options=options)
    return Gate(app, [Tenant()])


async def post(app: ASGIApp, path: str = QUOTE, key: str | None = "key-1",
               tenant: str | None = None, body: Any = BODY,
               content: bytes | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    if tenant:
        headers["X-Tenant-ID"] = tenant
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        if content is not None:
            return await c.post(path, headers=headers, content=content)
        return await c.post(path, headers=headers, json=body)


def error_code(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


async def test_a_repeat_is_replayed_with_the_replay_header() -> None:
    handler = Handler(status=201)
    app = guarded(handler)
    first, again = await post(app), await post(app)
    assert handler.runs == 1
    assert first.json()["got"] == BODY  # the handler read the body the middleware read
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["X-Idempotency-Replay"] == "true"
    assert again.headers["Location"] == "/carts/1"
    assert "x-idempotency-replay" not in first.headers


async def test_the_same_key_with_another_body_is_422_never_the_first_answer() -> None:
    handler = Handler()
    app = guarded(handler)
    await post(app)
    other = await post(app, body={"items": [{"resource": "p2", "quantity": 1}]})
    assert other.status_code == 422
    assert error_code(other) == "idempotency_key_reused"
    assert other.json()["error"]["details"] == {"field": "Idempotency-Key"}
    assert "run" not in other.text and "x-idempotency-replay" not in other.headers
    assert handler.runs == 1
    # The key still belongs to the first request: its repeat is replayed.
    assert (await post(app)).headers["X-Idempotency-Replay"] == "true"


async def test_json_key_order_and_whitespace_do_not_change_the_fingerprint() -> None:
    handler = Handler()
    app = guarded(handler)
    await post(app, content=b'{"a": 1, "b": [1, 2]}')
    again = await post(app, content=b'{"b":[1,2],\n "a":1}')
    assert again.status_code == 200 and again.headers["X-Idempotency-Replay"] == "true"
    assert handler.runs == 1


async def test_the_same_key_on_another_path_is_422() -> None:
    handler = Handler()
    app = guarded(handler)
    await post(app, QUOTE)
    other = await post(app, CHECKOUT)
    assert other.status_code == 422 and error_code(other) == "idempotency_key_reused"
    assert handler.runs == 1


async def test_another_query_string_is_another_request() -> None:
    handler = Handler()
    app = guarded(handler)
    await post(app, QUOTE)
    other = await post(app, QUOTE + "?wallet=x")
    assert other.status_code == 422
    assert handler.runs == 1


async def test_keys_are_per_tenant_another_tenant_runs_its_own_request() -> None:
    store = MemoryIdempotencyStore()
    handler = Handler()
    app = guarded(handler, store)
    await post(app)
    theirs = await post(app, tenant="other")
    assert theirs.status_code == 200 and theirs.json()["tenant"] == "other"
    assert "x-idempotency-replay" not in theirs.headers
    assert (await post(app, tenant="other")).json() == theirs.json()
    assert handler.runs == 2
    cached = await store.get("req:default:key-1")
    assert cached is not None
    assert cached.fingerprint == fingerprint(
        "POST", QUOTE, b"", "default", json.dumps(BODY).encode())


async def test_only_2xx_responses_are_cached() -> None:
    handler = Handler(status=400)
    app = guarded(handler)
    await post(app)
    handler.status = 200
    ok = await post(app)
    assert handler.runs == 2 and "x-idempotency-replay" not in ok.headers
    assert (await post(app)).headers["X-Idempotency-Replay"] == "true"
    assert handler.runs == 2


async def test_a_failed_first_request_frees_the_key_for_another_body() -> None:
    handler = Handler(status=400)
    app = guarded(handler)
    await post(app)
    handler.status = 200
    fixed = await post(app, body={"items": [{"resource": "p2", "quantity": 1}]})
    assert fixed.status_code == 200 and handler.runs == 2


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


async def test_a_keyed_body_too_large_to_fingerprint_is_413_and_not_run() -> None:
    handler = Handler()
    resp = await post(guarded(handler, max_request=16), content=b'{"x": "' + b"a" * 64 + b'"}')
    assert resp.status_code == 413 and error_code(resp) == "invalid_field"
    assert handler.runs == 0


async def test_concurrent_repeats_wait_for_the_first_and_run_once() -> None:
    handler = Handler()
    handler.gate = asyncio.Event()
    app = guarded(handler)
    first = asyncio.create_task(post(app))
    await handler.started.wait()
    repeats = [asyncio.create_task(post(app)) for _ in range(4)]
    await asyncio.sleep(0.05)  # the repeats are polling; none may have run the handler
    assert handler.runs == 1 and not any(r.done() for r in repeats)
    handler.gate.set()
    responses = [await first, *await asyncio.gather(*repeats)]
    assert handler.runs == 1
    assert {r.json()["run"] for r in responses} == {1}
    assert sum(r.headers.get("X-Idempotency-Replay") == "true" for r in responses) == 4


async def test_a_repeat_while_the_first_runs_past_the_wait_gets_409_in_use() -> None:
    handler = Handler()
    handler.gate = asyncio.Event()
    app = guarded(handler, wait=0.05)
    first = asyncio.create_task(post(app))
    await handler.started.wait()
    conflict = await post(app)
    assert conflict.status_code == 409
    assert error_code(conflict) == "idempotency_key_in_use"
    assert conflict.json()["error"]["retryable"] is True
    handler.gate.set()
    assert (await first).status_code == 200
    assert handler.runs == 1
    assert (await post(app)).headers["X-Idempotency-Replay"] == "true"


async def test_another_request_with_a_key_in_use_gets_422_at_once() -> None:
    handler = Handler()
    handler.gate = asyncio.Event()
    app = guarded(handler, wait=30.0)
    first = asyncio.create_task(post(app))
    await handler.started.wait()
    other = await asyncio.wait_for(post(app, body={"other": True}), timeout=10)
    assert other.status_code == 422 and error_code(other) == "idempotency_key_reused"
    handler.gate.set()
    assert (await first).status_code == 200
    assert handler.runs == 1


async def test_a_timed_out_request_frees_its_key_and_caches_nothing() -> None:
    store = MemoryIdempotencyStore()
    handler = Handler()
    handler.gate = asyncio.Event()  # never set: the timeout ends the run
    app = TimeoutMiddleware(guarded(handler, store), default=0.05)
    assert (await post(app)).status_code == 503
    handler.gate = None
    retry = await post(app)
    assert retry.status_code == 200 and "x-idempotency-replay" not in retry.headers
    assert handler.runs == 2


class DownStore(MemoryIdempotencyStore):
    async def get(self, key: str) -> CachedResponse | None:
        raise ConnectionError("redis down")


async def test_an_unreachable_store_refuses_keyed_requests_with_503() -> None:
    handler = Handler()
    app = guarded(handler, DownStore())
    refused = [await post(app) for _ in range(3)]
    assert {r.status_code for r in refused} == {503}
    assert {error_code(r) for r in refused} == {"service_unavailable"}
    assert refused[0].json()["error"]["retryable"] is True
    assert (await post(app, key=None)).status_code == 200  # unkeyed requests run
    assert handler.runs == 1  # recovery: tests/unit/test_mw_outage.py


def test_the_fingerprint_covers_method_path_query_tenant_and_body() -> None:
    base = fingerprint("POST", "/a", b"", "t", b'{"x":1}')
    assert len(base) == 64 and int(base, 16) >= 0
    assert fingerprint("POST", "/a", b"", "t", b'{ "x" : 1 }') == base
    variants = [fingerprint("PUT", "/a", b"", "t", b'{"x":1}'),
                fingerprint("POST", "/b", b"", "t", b'{"x":1}'),
                fingerprint("POST", "/a", b"q=1", "t", b'{"x":1}'),
                fingerprint("POST", "/a", b"", "u", b'{"x":1}'),
                fingerprint("POST", "/a", b"", "t", b'{"x":2}'),
                fingerprint("POST", "/a", b"", "t", b"not json"),
                # Parts are length-prefixed: moving bytes between them changes the form.
                fingerprint("POST", "/a", b"", "", b't{"x":1}'),
                fingerprint("POS", "T/a", b"", "t", b'{"x":1}')]
    assert len({base, *variants}) == len(variants) + 1
