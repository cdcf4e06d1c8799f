"""GET {prefix}/metrics: the Prometheus text exposition (spec 02, spec 14).

Served from inside the middleware chain (request id, security headers, timeouts apply)
rather than from the route table, so it needs nothing from the app but an exposition
function. With `server.admin_metrics_api_key` set, a scrape must send it as a Bearer
token; the key is compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.middleware._asgi import header, route_path, send_error, state

Exposition = Callable[[], tuple[bytes, str]]


class MetricsEndpoint:
    def __init__(self, app: ASGIApp, *, path: str, exposition: Exposition,
                 api_key: str = "") -> None:
        self.app = app
        self.path = path
        self.exposition = exposition
        self.api_key = api_key.encode()

    def authorized(self, scope: Scope) -> bool:
        if not self.api_key:
            return True
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("latin-1"), self.api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        state(scope)["route_template"] = self.path
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.INVALID_FIELD, f"method {scope['method']} not allowed here"),
                status=405, headers=[("Allow", "GET, HEAD")])
            return
        if not self.authorized(scope):
            await send_error(scope, receive, send, CedrosError(
                ErrorCode.UNAUTHORIZED, "metrics need the admin metrics API key as a Bearer "
                "token"), headers=[("WWW-Authenticate", 'Bearer realm="metrics"')])
            return
        # Rendering walks every series; off the event loop it cannot stall other requests.
        body, content_type = await asyncio.to_thread(self.exposition)
        response = Response(body, media_type=content_type,
                            headers={"Cache-Control": "no-store"})
        await response(scope, receive, send)
