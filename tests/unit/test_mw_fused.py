"""The fused layers answer exactly as the layers they replace: one Gate for the request
checks, one RequestEnvelope for recovery + request id + access log; and the per-request
header index reads headers as a scan would."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.observability.http_stats import HTTPStats
from cedros_pay.rest.middleware import (
    AccessLogMiddleware,
    APIVersion,
    RateLimit,
    RateLimitRules,
    RecoveryMiddleware,
    RequestIdMiddleware,
    Rule,
    SecurityHeaders,
    Tenant,
)
from cedros_pay.rest.middleware._asgi import header, header_index
from cedros_pay.rest.middleware.envelope import RequestEnvelope
from cedros_pay.rest.middleware.gate import Gate
from cedros_pay.rest.middleware.state import MemoryRateLimiter
from cedros_pay.rest.middleware.state.buckets import Bucket, Verdict

Headers = list[tuple[bytes, bytes]]


def answering(headers: Headers) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


async def call(app: ASGIApp, headers: Headers = (), *,  # type: ignore[assignment]
               scope_type: str = "http") -> list[Message]:
    sent: list[Message] = []
    scope = {"type": scope_type, "method": "GET", "path": "/x", "root_path": "",
             "scheme": "http", "query_string": b"", "client": ("203.0.113.7", 1),
             "headers": list(headers)}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def stacked(app: ASGIApp, limiter: MemoryRateLimiter, limit: int) -> ASGIApp:
    app = Gate(app, [RateLimit(limiter=limiter, rules=RateLimitRules(global_=Rule(limit, 60)))])
    app = Gate(app, [Tenant()])
    app = Gate(app, [APIVersion()])
    return Gate(app, [SecurityHeaders()])


def fused(app: ASGIApp, limiter: MemoryRateLimiter, limit: int) -> ASGIApp:
    return Gate(app, [SecurityHeaders(), APIVersion(), Tenant(), RateLimit(
        limiter=limiter, rules=RateLimitRules(global_=Rule(limit, 60)))])


RESPONSES: list[Headers] = [
    [(b"content-type", b"text/plain")],
    # names the checks also set: Vary is merged, X-API-Version replaced, security kept
    [(b"vary", b"Accept-Encoding"), (b"x-api-version", b"9"),
     (b"x-frame-options", b"SAMEORIGIN")],
]
REQUESTS: list[Headers] = [
    [],
    [(b"x-api-version", b"1"), (b"accept", b"application/json")],
    [(b"x-api-version", b"7")],  # refused: not served
    [(b"x-api-version", b"one")],  # refused: unreadable
    [(b"x-tenant-id", b"bad tenant!")],  # refused: malformed
    [(b"x-tenant-id", b"shop-2")],
]


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("request_headers", REQUESTS)
async def test_one_gate_answers_as_the_stacked_checks(response: Headers,
                                                      request_headers: Headers) -> None:
    got = [await call(build(answering(response), MemoryRateLimiter(), 5), request_headers)
           for build in (stacked, fused)]
    assert got[0] == got[1]
    assert got[0][0]["status"] in (200, 400)


async def test_a_refusal_by_a_later_check_carries_the_earlier_checks_headers() -> None:
    for build in (stacked, fused):
        app = build(answering([]), MemoryRateLimiter(), 1)
        assert (await call(app))[0]["status"] == 200
        refused = (await call(app))[0]
        assert refused["status"] == 429
        names = {k for k, _ in refused["headers"]}
        assert {b"x-frame-options", b"x-api-version", b"retry-after"} <= names


class RoundTrip:
    """A limiter that, like Redis, always needs an await (the buckets kept in memory)."""

    def __init__(self) -> None:
        self.buckets = MemoryRateLimiter()

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict | None:
        return None

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        return self.buckets.acquire_now(buckets)


async def test_a_check_that_needs_io_is_awaited() -> None:
    app = Gate(answering([]), [RateLimit(limiter=RoundTrip(),
                                         rules=RateLimitRules(global_=Rule(1, 60)))])
    first = (await call(app))[0]
    assert first["status"] == 200
    assert (b"x-ratelimit-remaining", b"0") in first["headers"]
    assert (await call(app))[0]["status"] == 429


async def test_on_websockets_only_websocket_checks_run_and_a_refusal_closes() -> None:
    reached: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["state"]["tenant"])

    app = Gate(inner, [SecurityHeaders(), APIVersion(), Tenant()])
    assert await call(app, [(b"x-api-version", b"7")], scope_type="websocket") == []
    assert reached == ["default"]  # the version check did not run
    closed = await call(app, [(b"x-tenant-id", b"bad tenant!")], scope_type="websocket")
    assert closed == [{"type": "websocket.close", "code": 1008}]
    assert reached == ["default"]


def raising(after_start: bool) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")
    return app


APPS = {"answers": answering([(b"content-type", b"text/plain")]),
        "raises": raising(False), "raises after starting": raising(True)}


def counted(stats: HTTPStats) -> tuple[dict[tuple[str, ...], float], float]:
    """Requests counted per label set, and requests in flight, as /metrics shows them."""
    counts: dict[tuple[str, ...], float] = {}
    in_flight = -1.0
    for metric in stats.collect():
        for sample in metric.samples:
            if sample.name == "http_requests_total":
                counts[tuple(sample.labels.values())] = sample.value
            elif sample.name == "http_requests_in_flight":
                in_flight = sample.value
    return counts, in_flight


@pytest.mark.parametrize("name", list(APPS))
async def test_the_envelope_answers_and_records_as_the_three_layers(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    results = []
    for build in (lambda a, s: RecoveryMiddleware(RequestIdMiddleware(
                      AccessLogMiddleware(a, recorder=s))),
                  lambda a, s: RequestEnvelope(a, recorder=s)):
        stats = HTTPStats()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            sent = await call(build(APPS[name], stats), [(b"x-request-id", b"abc-1")])
        results.append((sent, *counted(stats),
                        sorted((r.name, r.levelname, r.getMessage()) for r in caplog.records)))
    assert results[0] == results[1]
    sent = results[0][0]
    if name == "raises":
        assert sent[0]["status"] == 500
        assert (b"x-request-id", b"abc-1") in sent[0]["headers"]
    assert all(v == 1 for v in results[0][1].values()) and results[0][2] == 0


def test_the_header_index_reads_the_first_value_like_a_scan() -> None:
    scope: Scope = {"headers": [(b"accept", b"a"), (b"x-wallet", b"w1"), (b"accept", b"b")]}
    assert header(scope, b"accept") == "a"
    assert header_index(scope) == {b"accept": b"a", b"x-wallet": b"w1"}
    assert header(scope, b"missing") is None
    scope["headers"] = [(b"accept", b"c")]  # a new header list gets a new index
    assert header(scope, b"accept") == "c"
    assert header(scope, b"x-wallet") is None


def reference_apply(original: Headers, edits: list[object]) -> Headers:
    """Edits applied one by one, innermost first, by the plain merge rules."""
    from cedros_pay.rest.middleware._asgi import HeaderBlock, merge_headers

    headers = list(original)
    for edit in reversed(edits):
        present = {k.lower() for k, _ in headers}
        if isinstance(edit, list):
            merge_headers(headers, edit, present=present)
        elif isinstance(edit, HeaderBlock):
            if edit.otherwise is not None and any(k in present for k, _ in edit.headers):
                edit.otherwise(headers, present)
            else:
                merge_headers(headers, edit.headers, replace=edit.replace, present=present)
        else:
            edit(headers, present)  # type: ignore[operator]
    return headers


async def test_the_exchange_applies_edits_as_the_plain_merges_in_random_cases() -> None:
    import random

    from cedros_pay.rest.middleware._asgi import Exchange, HeaderBlock, merge_vary

    rng = random.Random(7)
    names = [b"vary", b"x-a", b"x-b", b"x-request-id", b"set-cookie", b"content-type"]

    def some_headers(lower: bool) -> Headers:
        picked = rng.sample(names, rng.randint(0, 3))
        out = [(n if lower or rng.random() < 0.5 else n.title(), b"v%d" % rng.randint(0, 9))
               for n in picked]
        if not lower and rng.random() < 0.3:
            out.append((b"set-cookie", b"second"))  # a name the response repeats
        return out

    def merge_vary_edit(headers: Headers, present: set[bytes]) -> None:
        merge_vary(headers, ["Origin"], present)

    for _ in range(400):
        edits: list[object] = []
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            block = some_headers(lower=True)
            if roll < 0.4:
                edits.append(block)
            elif roll < 0.8:
                edits.append(HeaderBlock(block, rng.random() < 0.5,
                                         merge_vary_edit if rng.random() < 0.3 else None))
            else:
                edits.append(merge_vary_edit)
        original = some_headers(lower=False)
        sent: list[Message] = []

        async def record(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        ex = Exchange(record)
        ex.edits += edits  # type: ignore[arg-type]
        await ex({"type": "http.response.start", "status": 200, "headers": list(original)})
        assert sent[0]["headers"] == reference_apply(original, edits), (original, edits)


async def test_a_failing_access_hook_is_recovered_by_the_envelope_as_by_the_stack(
        caplog: pytest.LogCaptureFixture) -> None:
    from cedros_pay.logs import request_id_var
    from cedros_pay.observability.hooks import HTTPRequestEvent

    class Failing:
        def on_request_started(self) -> None:
            pass

        def on_request_finished(self, event: HTTPRequestEvent) -> None:
            raise RuntimeError("hook down")

    results = []
    for build in (lambda a: RecoveryMiddleware(RequestIdMiddleware(
                      AccessLogMiddleware(a, Failing()))),  # type: ignore[arg-type]
                  lambda a: RequestEnvelope(a, Failing())):  # type: ignore[arg-type]
        caplog.clear()
        before = request_id_var.get(None)
        sent = await call(build(APPS["answers"]), [(b"x-request-id", b"abc-1")])
        assert request_id_var.get(None) == before  # the request's id does not linger
        results.append((sent, sorted((r.name, r.levelname, r.getMessage())
                                     for r in caplog.records)))
    assert results[0] == results[1]
    assert results[0][0][0]["status"] == 200
    assert any("after its response was sent" in m for _, _, m in results[0][1])
