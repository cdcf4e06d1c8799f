"""Request id (spec 10, DESIGN §7): propagate a sane X-Request-ID, else `req_` + 32 hex.

The id goes into the request state, the logging context variable (so every log line made
while serving the request carries it) and the response's X-Request-ID header.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cedros_pay.core.ids import is_sane_request_id, new_request_id
from cedros_pay.logs import request_id_var
from cedros_pay.rest.middleware._asgi import (
    HeaderBlock,
    edit_response,
    header,
    set_headers,
    state,
)


def request_id_of(scope: Scope) -> str:
    """The id the request-id middleware chose, or a fresh one when it did not run."""
    rid = state(scope).get("request_id")
    return rid if isinstance(rid, str) else new_request_id()


def assign_request_id(scope: Scope) -> tuple[str, list[tuple[bytes, bytes]]]:
    """The request's id (a sane incoming one, else a new one), noted in its state; and
    the response header that carries it."""
    incoming = header(scope, b"x-request-id")
    # Only a sane incoming id is kept: it ends up in our logs.
    rid = incoming if incoming and is_sane_request_id(incoming) else new_request_id()
    state(scope)["request_id"] = rid
    return rid, [(b"x-request-id", rid.encode("latin-1"))]


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid, extra = assign_request_id(scope)
        outer: Send
        if scope["type"] == "http":
            # Registered first, so applied last: the id always wins (replace=True).
            outer = edit_response(scope, send, HeaderBlock(extra, True))
        else:
            async def send_with_id(message: Message) -> None:
                if message["type"] == "websocket.accept":
                    set_headers(message, extra, replace=True)
                await send(message)

            outer = send_with_id

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, outer)
        finally:
            request_id_var.reset(token)
