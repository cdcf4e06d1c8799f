"""JSON access log (spec 14's fields) and the HTTP metrics, one line per request.

Runs inside the request-id layer (so the line carries the id) and outside everything that
can refuse a request (so 429s, timeouts and CORS preflights are logged and counted too).
The metrics label is the matched route's template, never the raw path.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.logs import truncate_wallet
from cedros_pay.observability.hooks import (
    HookRegistry,
    HTTPHook,
    HTTPRecorder,
    HTTPRequestEvent,
)
from cedros_pay.rest.middleware._asgi import Exchange, exchange, header, request_wallet, state

access_log = logging.getLogger("cedros_pay.access")

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route that served the request (`/paywall/v1/cart/{cartId}`)."""
    explicit = state(scope).get("route_template")
    if isinstance(explicit, str):
        return explicit
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class AccessLog:
    """One request's line and metrics: `begin` as it arrives, `end` once it is over.

    `recorder` takes the HTTP metrics directly (one call per request instead of an event
    through the hook registry); `hooks` still get every request's events."""

    def __init__(self, hooks: HTTPHook | None = None, logger: logging.Logger = access_log,
                 recorder: HTTPRecorder | None = None) -> None:
        self.hooks = hooks
        self.log = logger
        self.recorder = recorder
        self._seen: tuple[int, bool] = (-1, True)  # (registry generation, anyone listening)

    def begin(self) -> HTTPHook | None:
        """Count the request in flight; the hooks to tell when it ends (None: nobody)."""
        recorder, hooks = self.recorder, self.hooks
        if isinstance(hooks, HookRegistry) and not self._listening(hooks):
            hooks = None  # nobody listens: no calls, no event
        if recorder is not None:
            recorder.started()
        if hooks is not None:
            hooks.on_request_started()
        return hooks

    def end(self, scope: Scope, ex: Exchange, hooks: HTTPHook | None, started: float) -> None:
        duration = time.perf_counter() - started
        # 500 is what the client gets if the app raised before answering.
        status = ex.status if ex.started else 500
        # Building the line costs as much as a cheap endpoint: skip it when unread.
        if self.log.isEnabledFor(logging.INFO):
            self._write(scope, status, duration)
        route = route_template(scope)
        if self.recorder is not None:
            self.recorder.record(scope["method"], route, status, duration)
        if hooks is not None:
            hooks.on_request_finished(HTTPRequestEvent(scope["method"], route, status,
                                                       duration))

    def _listening(self, hooks: HookRegistry) -> bool:
        generation, listening = self._seen
        if generation != hooks.generation:
            listening = (hooks.active(HTTPHook, "on_request_started")
                         or hooks.active(HTTPHook, "on_request_finished"))
            self._seen = (hooks.generation, listening)
        return listening

    def _write(self, scope: Scope, status: int, duration: float) -> None:
        client = scope.get("client")
        fields: dict[str, object] = {
            "method": scope["method"], "path": scope["path"], "status": status,
            "duration_ms": round(duration * 1000, 3),
            "remote_ip": state(scope).get("client_ip") or (client[0] if client else ""),
            "user_agent": header(scope, b"user-agent") or "",
        }
        wallet = request_wallet(scope)
        if wallet:
            fields["wallet"] = truncate_wallet(wallet)
        self.log.info("request", extra=fields)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, hooks: HTTPHook | None = None,
                 logger: logging.Logger = access_log,
                 recorder: HTTPRecorder | None = None) -> None:
        self.app = app
        self.access = AccessLog(hooks, logger, recorder)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ex, send = exchange(scope, send)
        hooks = self.access.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            self.access.end(scope, ex, hooks, started)
