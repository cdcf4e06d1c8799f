"""Idempotent replay (spec 10), as Stripe does it, for the routes that declare it.

A route takes part when its handler's `@endpoint` doc lists the `Idempotency-Key` header
(`idempotent_routes` reads the route table), so the protected list is the OpenAPI's list
and names only routes that exist.

With an `Idempotency-Key`, the first request runs and its 2xx response is cached for 24 h
under the key within the request's tenant (one tenant never sees, or blocks, another's
keys), together with the request's fingerprint: a SHA-256 over its method, path, query,
tenant and body (JSON canonicalised: key order and whitespace do not count). A repeat
with the same fingerprint gets the cached response with `X-Idempotency-Replay: true`; the
same key on a different request (another body, path or method) gets 422
`idempotency_key_reused`, never the first request's answer. Only 2xx responses are kept,
so a failed request can be retried with the same key.

A repeat that arrives while the first is still running waits for it (polling the store)
and replays its response; if the first has not finished within `wait`, the repeat gets
409 `idempotency_key_in_use` (Stripe's answer, after a grace period). A different request
with a key in use gets 422 at once. Either way the handler runs once, at every instance
sharing the store (Redis). If the store cannot be reached, a keyed request is refused
with 503 `service_unavailable` (Retry-After: 1) rather than run without the guarantee it
asked for; the outage is logged once, and its end too (state/outage.py), and the first
request after Redis is back runs normally again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.endpoint import doc_of
from cedros_pay.rest.middleware._asgi import header, route_path, send_error, state
from cedros_pay.rest.middleware.state.outage import Outage
from cedros_pay.rest.middleware.state.responses import CachedResponse, IdempotencyStore

log = logging.getLogger("cedros_pay.idempotency")

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")
REPLAY_HEADER = (b"x-idempotency-replay", b"true")
# Per-request headers the outer layers set again on a replay.
_NOT_CACHED = frozenset({b"x-request-id", b"date", b"server", b"x-ratelimit-limit",
                         b"x-ratelimit-remaining"})


def idempotent_routes(routes: Iterable[BaseRoute]) -> frozenset[tuple[str, str]]:
    """(method, path) of every route whose handler declares the `Idempotency-Key` header.

    The middleware matches exact paths, so such a route must not have path parameters.
    """
    found: set[tuple[str, str]] = set()
    for route in routes:
        if not isinstance(route, Route):
            continue
        doc = doc_of(route.endpoint)
        if doc is None or all(h.name != HEADER for h in doc.headers):
            continue
        if route.param_convertors:
            raise ValueError(f"{route.path}: an idempotent route needs a fixed path")
        found.update((m, route.path) for m in route.methods or () if m != "HEAD")
    return frozenset(found)


def fingerprint(method: str, path: str, query: bytes, tenant: str, body: bytes) -> str:
    """SHA-256 (hex) of the request's canonical form: each part length-prefixed, so no
    two different requests share a form; a JSON body re-serialised with sorted keys."""
    try:
        canonical = b"j" + orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:  # not JSON (or an integer orjson cannot hold): as sent
        canonical = b"r" + body
    digest = hashlib.sha256(b"cedros-idempotency-v1")
    for part in (method.encode(), path.encode(), query, tenant.encode(), canonical):
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotencyOptions:
    routes: frozenset[tuple[str, str]]
    ttl: float = 24 * 3600.0
    wait: float = 10.0  # how long a repeat waits for a running first request
    lease: float = 90.0  # claim lifetime: longer than the request timeout
    poll: float = 0.05
    max_body: int = 1 << 20  # larger responses are not cached (and so not replayed)
    max_request: int = 1 << 20  # larger keyed requests are refused (413): not fingerprinted


class _Lookup(NamedTuple):
    """What the store says about a key: a cached response, our claim, or neither."""

    cached: CachedResponse | None = None
    token: str | None = None
    reused: bool = False  # the key's live claim is another request's


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, store: IdempotencyStore,
                 options: IdempotencyOptions, outage: Outage | None = None) -> None:
        self.app = app
        self.store = store
        self.options = options
        self.outage = outage or Outage(log, "idempotency store",
                                        meanwhile="keyed requests get 503")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key_header(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not KEY.fullmatch(key):
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INVALID_FIELD, "Idempotency-Key must be 1-255 visible ASCII characters",
                {"field": HEADER}))
            return
        body = await self._read_body(receive)
        if body is None:  # the client went away
            return
        if len(body) > self.options.max_request:
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INVALID_FIELD, f"request body exceeds {self.options.max_request} bytes",
                {"field": "body"}), status=413)
            return
        tenant = str(state(scope).get("tenant") or "default")
        digest = fingerprint(scope["method"], route_path(scope), scope.get("query_string", b""),
                             tenant, body)
        cache_key = f"req:{tenant}:{key}"  # tenant ids have no ':' (tenant.TENANT_ID)
        outage = self.outage
        found: _Lookup | None = None
        if not outage.skip():
            try:
                found = await self._cached_or_claim(cache_key, digest)
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.ok()
        if found is None:
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.SERVICE_UNAVAILABLE,
                "Idempotency-Key could not be checked; nothing was done. Please retry."),
                headers=[("Retry-After", "1")])
            return
        if found.reused or (found.cached is not None and found.cached.fingerprint != digest):
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED, None, {"field": HEADER}))
            return
        if found.cached is not None:
            await replay(send, found.cached)
            return
        if found.token is None:
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.IDEMPOTENCY_KEY_IN_USE, None, {"field": HEADER}))
            return
        await self._run(scope, _replaying(body, receive), send, cache_key, found.token, digest)

    def _key_header(self, scope: Scope) -> str | None:
        if scope["type"] != "http":
            return None
        if (scope["method"], route_path(scope)) not in self.options.routes:
            return None
        value = header(scope, b"idempotency-key")
        return value.strip() if value is not None else None

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole request body (the fingerprint needs it), or None on a disconnect;
        reading stops a byte past `max_request`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.options.max_request or not message.get("more_body", False):
                return b"".join(chunks)

    async def _cached_or_claim(self, key: str, digest: str) -> _Lookup:
        """The cached response, or a claim on the key; `reused` when another request holds
        it; neither after `wait`."""
        opts = self.options
        deadline = time.monotonic() + opts.wait
        while True:
            cached = await self.store.get(key)
            if cached is not None:
                return _Lookup(cached=cached)
            token = await self.store.claim(key, opts.lease, digest)
            if token is not None:
                # The first request may have completed between our get and claim.
                cached = await self.store.get(key)
                if cached is not None:
                    await self.store.release(key, token)
                    return _Lookup(cached=cached)
                return _Lookup(token=token)
            holder = await self.store.claimant(key)
            if holder is not None and holder != digest:
                return _Lookup(reused=True)
            if time.monotonic() >= deadline:
                return _Lookup()
            await asyncio.sleep(opts.poll)

    async def _run(self, scope: Scope, receive: Receive, send: Send, key: str,
                   token: str, digest: str) -> None:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        body: list[bytes] = []
        size = 0

        async def send_captured(message: Message) -> None:
            nonlocal status, headers, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= self.options.max_body:
                    body.append(chunk)
            await send(message)

        completed = False
        try:
            await self.app(scope, receive, send_captured)
            if 200 <= status < 300 and size <= self.options.max_body:
                response = CachedResponse(status, _cacheable(headers), b"".join(body),
                                          cached_at=time.time(), fingerprint=digest)
                try:
                    await self.store.complete(key, token, response, self.options.ttl)
                    completed = True
                except Exception:
                    # The client has its answer. Keep the claim until its lease lapses, so
                    # a quick retry gets a 409 rather than a second run.
                    log.exception("could not cache an idempotent response")
                    completed = True
        finally:
            if not completed:
                await _release_quietly(self.store, key, token)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's messages
    (a disconnect)."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _cacheable(headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                 if k.lower() not in _NOT_CACHED)


async def replay(send: Send, cached: CachedResponse) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in cached.headers]
    await send({"type": "http.response.start", "status": cached.status,
                "headers": [*raw, REPLAY_HEADER]})
    await send({"type": "http.response.body", "body": cached.body})


async def _release_quietly(store: IdempotencyStore, key: str, token: str) -> None:
    """Free the key for a retry; if this fails the lease still frees it later."""
    try:
        await store.release(key, token)
    except Exception:
        log.exception("could not release an idempotency claim; it lapses with its lease")
