"""The chain's shortcuts behave like the plain layers: response edits collected by the
request-id layer, and the timeout's shared timer."""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.rest.middleware import (
    APIVersion,
    CORSMiddleware,
    Gate,
    RateLimit,
    RateLimitRules,
    RequestIdMiddleware,
    Rule,
    SecurityHeaders,
    TimeoutMiddleware,
)
from cedros_pay.rest.middleware.state import MemoryRateLimiter


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/plain"), (b"vary", b"Accept-Encoding"),
        (b"x-frame-options", b"SAMEORIGIN"), (b"x-api-version", b"9")]})
    await send({"type": "http.response.body", "body": b"ok"})


def header_layers(app: ASGIApp) -> ASGIApp:
    app = Gate(app, [RateLimit(limiter=MemoryRateLimiter(),
                               rules=RateLimitRules(global_=Rule(10, 1.0)))])
    app = Gate(app, [APIVersion()])
    app = Gate(app, [SecurityHeaders()])
    return CORSMiddleware(app, ["https://shop.example"])


async def raw_headers(app: ASGIApp) -> list[tuple[bytes, bytes]]:
    sent: list[Message] = []
    scope = {"type": "http", "method": "GET", "path": "/x", "root_path": "", "scheme": "http",
             "query_string": b"", "client": ("203.0.113.7", 1),
             "headers": [(b"origin", b"https://shop.example"), (b"x-request-id", b"abc-1")]}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    headers = sent[0]["headers"]
    assert isinstance(headers, list)
    return headers


async def test_collected_response_edits_equal_the_nested_wrappers() -> None:
    fused = await raw_headers(RequestIdMiddleware(header_layers(answer)))
    alone = await raw_headers(header_layers(answer))
    assert fused == [*alone, (b"x-request-id", b"abc-1")]
    assert (b"vary", b"Accept-Encoding, Accept, X-API-Version, Origin") in fused
    assert (b"x-frame-options", b"SAMEORIGIN") in fused and (b"x-api-version", b"1") in fused


async def test_each_of_many_concurrent_requests_gets_its_own_deadline() -> None:
    # "/stuck" never answers by itself; "/quick" answers after one turn of the loop. Only
    # the deadline tells them apart: a second is a margin no loaded machine eats up.
    never = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/stuck":
            await never.wait()
        await asyncio.sleep(0)
        await answer(scope, receive, send)

    app = TimeoutMiddleware(handler, default=1.0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        paths = ("/stuck", "/quick", "/stuck", "/quick", "/quick")
        resps = await asyncio.gather(*(c.get(p) for p in paths))
        assert [r.status_code for r in resps] == [503, 200, 503, 200, 200]
        assert (await c.get("/stuck")).status_code == 503  # the timer re-arms after idling
        assert (await c.get("/quick")).status_code == 200


async def test_a_cancellation_from_outside_is_not_taken_for_the_deadline() -> None:
    entered = asyncio.Event()

    async def stuck(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await asyncio.sleep(5)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        raise AssertionError("nothing may be sent")

    app = TimeoutMiddleware(stuck, default=0.05)
    scope = {"type": "http", "method": "GET", "path": "/x", "root_path": "", "headers": []}
    task = asyncio.create_task(app(scope, receive, send))
    await entered.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the outside cancellation was swallowed")
    await asyncio.sleep(0.3)  # the shared timer fires later and finds nothing to cancel


async def test_header_blocks_apply_like_merges_innermost_first() -> None:
    from cedros_pay.rest.middleware._asgi import Exchange, HeaderBlock, Headers

    sent: list[dict[str, object]] = []

    async def record(message: dict[str, object]) -> None:
        sent.append(message)

    def vary(headers: Headers, present: set[bytes]) -> None:
        headers.append((b"vary", b"Accept"))
        present.add(b"vary")

    ex = Exchange(record)  # type: ignore[arg-type]
    ex.edits += [HeaderBlock([(b"x-request-id", b"outer")], replace=True),  # outermost
                 HeaderBlock([(b"x-frame-options", b"DENY"), (b"x-a", b"1")]),
                 vary,
                 HeaderBlock([(b"x-a", b"inner"), (b"x-b", b"2")])]  # innermost: first
    await ex({"type": "http.response.start", "status": 402,
              "headers": [(b"X-Frame-Options", b"SAMEORIGIN"), (b"x-request-id", b"app")]})
    headers = sent[0]["headers"]
    assert headers == [(b"X-Frame-Options", b"SAMEORIGIN"), (b"x-a", b"inner"), (b"x-b", b"2"),
                       (b"vary", b"Accept"), (b"x-request-id", b"outer")]
    assert ex.started and ex.status == 402
