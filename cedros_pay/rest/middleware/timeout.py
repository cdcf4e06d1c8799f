"""Per-route deadlines (spec 10): 5 s for health and discovery, 60 s for the rest.

The deadline covers the handler's work up to the start of its response. When it passes,
the handler is *cancelled*, not abandoned: it cannot write anything after the client was
told the request failed, and a database transaction it had open rolls back. The client
gets a 503 envelope. Once a response has started it is let finish, since a half-sent
body cannot be replaced by an error any more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import route_path, send_error

log = logging.getLogger("cedros_pay.timeout")

TIMEOUT_STATUS = 503


def discovery_paths(prefix: str) -> Callable[[str], bool]:
    """Spec 02's health and discovery group (5 s), under the route prefix."""
    exact = {f"{prefix}/cedros-health", f"{prefix}/openapi.json", f"{prefix}/resources/list",
             f"{prefix}/metrics"}
    well_known = f"{prefix}/.well-known/"
    return lambda path: path in exact or path.startswith(well_known)


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, default: float = 60.0, short: float = 5.0,
                 is_short: Callable[[str], bool] | None = None) -> None:
        self.app = app
        self.default = default
        self.short = short
        self.is_short = is_short or discovery_paths("")

    def timeout_for(self, scope: Scope) -> float:
        return self.short if self.is_short(route_path(scope)) else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.timeout_for(scope)
        started = False
        deadline: asyncio.Timeout | None = None

        async def send_guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if deadline is not None:
                    deadline.reschedule(None)  # the response is under way: let it finish
            await send(message)

        try:
            async with asyncio.timeout(seconds) as deadline:
                await self.app(scope, receive, send_guarded)
        except TimeoutError:
            if deadline is None or not deadline.expired() or started:
                raise
            log.warning("request timed out and was cancelled",
                        extra={"path": scope["path"], "timeout_s": seconds})
            err = CedrosError(ErrorCode.INTERNAL_ERROR,
                              "The request took too long and was stopped. Please try again.",
                              {"timeoutSeconds": seconds})
            await send_error(scope, receive, send, err, status=TIMEOUT_STATUS)
