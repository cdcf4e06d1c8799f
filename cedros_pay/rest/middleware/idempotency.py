"""Idempotent replay (spec 10) for the spec's idempotent POST endpoints.

With an `Idempotency-Key` header, the first request runs and its 2xx response is cached
for 24 h under `{METHOD}:{PATH}:{key}` (within the request's tenant, so one tenant never
sees another's response); a repeat gets the cached response with
`X-Idempotency-Replay: true`. Only 2xx responses are kept, so a failed request can be
retried with the same key.

A repeat that arrives while the first is still running waits for it (polling the store)
and replays its response; if the first has not finished within `wait`, the repeat gets a
409 instead. Either way the handler runs once. Every instance sharing the store (Redis)
shares this guarantee. If the store cannot be reached, a keyed request is refused (503)
rather than run without the guarantee it asked for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import header, route_path, send_error, state
from cedros_pay.rest.middleware.state.responses import CachedResponse, IdempotencyStore

log = logging.getLogger("cedros_pay.idempotency")

KEY = re.compile(r"[\x21-\x7e]{1,255}")
REPLAY_HEADER = (b"x-idempotency-replay", b"true")
# Per-request headers the outer layers set again on a replay.
_NOT_CACHED = frozenset({b"x-request-id", b"date", b"server", b"x-ratelimit-limit",
                         b"x-ratelimit-remaining"})


def idempotent_routes(prefix: str) -> frozenset[tuple[str, str]]:
    """The POST endpoints specs 02-04 mark idempotent, under the route prefix."""
    v1 = f"{prefix}/paywall/v1"
    paths = ("/cart/quote", "/cart/checkout", "/stripe-session",
             "/subscription/stripe-session", "/subscription/quote",
             "/subscription/x402/activate", "/subscription/change", "/refunds/request")
    return frozenset(("POST", v1 + p) for p in paths)


@dataclass(frozen=True, slots=True)
class IdempotencyOptions:
    routes: frozenset[tuple[str, str]]
    ttl: float = 24 * 3600.0
    wait: float = 10.0  # how long a repeat waits for a running first request
    lease: float = 90.0  # claim lifetime: longer than the request timeout
    poll: float = 0.05
    max_body: int = 1 << 20  # larger responses are not cached (and so not replayed)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, store: IdempotencyStore,
                 options: IdempotencyOptions) -> None:
        self.app = app
        self.store = store
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key_header(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not KEY.fullmatch(key):
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INVALID_FIELD, "Idempotency-Key must be 1-255 visible ASCII characters",
                {"field": "Idempotency-Key"}))
            return
        tenant = state(scope).get("tenant") or "default"
        cache_key = f"{tenant}:{scope['method']}:{scope['path']}:{key}"
        try:
            cached, token = await self._cached_or_claim(cache_key)
        except Exception:
            log.exception("idempotency store unavailable")
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INTERNAL_ERROR, "Idempotency-Key could not be checked; please retry."),
                status=503)
            return
        if cached is not None:
            await replay(send, cached)
            return
        if token is None:
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INVALID_FIELD,
                "A request with this Idempotency-Key is still being processed; retry later.",
                {"field": "Idempotency-Key", "reason": "in_progress"}), status=409)
            return
        await self._run(scope, receive, send, cache_key, token)

    def _key_header(self, scope: Scope) -> str | None:
        if scope["type"] != "http":
            return None
        if (scope["method"], route_path(scope)) not in self.options.routes:
            return None
        value = header(scope, b"idempotency-key")
        return value.strip() if value is not None else None

    async def _cached_or_claim(self, key: str) -> tuple[CachedResponse | None, str | None]:
        """The cached response, or a claim on the key; (None, None) after `wait`."""
        opts = self.options
        deadline = time.monotonic() + opts.wait
        while True:
            cached = await self.store.get(key)
            if cached is not None:
                return cached, None
            token = await self.store.claim(key, opts.lease)
            if token is not None:
                # The first request may have completed between our get and claim.
                cached = await self.store.get(key)
                if cached is not None:
                    await self.store.release(key, token)
                    return cached, None
                return None, token
            if time.monotonic() >= deadline:
                return None, None
            await asyncio.sleep(opts.poll)

    async def _run(self, scope: Scope, receive: Receive, send: Send, key: str,
                   token: str) -> None:
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
                                          cached_at=time.time())
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
