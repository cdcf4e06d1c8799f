"""Panic recovery (spec 10), the outermost layer: an exception becomes a 500 envelope.

The traceback goes to the log, never to the client. The 500 carries the request id and
the security headers itself, since the layers that add them sit inside this one.

Starlette's own error handler (rest/errors.py) answers most handler exceptions and then
re-raises them; by then the response is complete and already logged with its traceback,
so here it is only noted. An exception after the response began but before it ended
cannot be turned into an envelope any more; it is logged and the connection is left to
the server to close.

A `CedrosError` raised by a middleware layer (outside Starlette's handlers: a layer whose
store lost its database, say) keeps its own code and status; only anything else is a 500.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.logs import request_id_var
from cedros_pay.rest.middleware._asgi import Exchange, exchange, send_error
from cedros_pay.rest.middleware.request_id import request_id_of
from cedros_pay.rest.middleware.security_headers import security_headers

log = logging.getLogger("cedros_pay.recovery")


async def recover(scope: Scope, receive: Receive, send: Send, ex: Exchange,
                  exc: Exception) -> None:
    """After `exc` escaped the app: log it, and answer 500 unless a response began."""
    started, finished = ex.started, ex.finished
    rid = request_id_of(scope)
    token = request_id_var.set(rid)
    try:
        if finished:
            log.warning("request raised after its response was sent",
                        extra={"error_type": type(exc).__name__})
            return
        if isinstance(exc, CedrosError):
            log.error("request failed", extra={"code": exc.code.value, "error": exc.message,
                                               "method": scope.get("method"),
                                               "path": scope.get("path")})
        else:
            log.error("request failed with an unhandled exception", exc_info=exc,
                      extra={"method": scope.get("method"), "path": scope.get("path")})
        if started:
            return
        headers = [(k.decode(), v.decode()) for k, v in security_headers(scope)]
        err = exc if isinstance(exc, CedrosError) else CedrosError(ErrorCode.INTERNAL_ERROR)
        await send_error(scope, receive, send, err, headers=[*headers, ("X-Request-ID", rid)])
    finally:
        request_id_var.reset(token)


class RecoveryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ex, inner = exchange(scope, send)  # as the outermost layer, it opens the Exchange
        try:
            await self.app(scope, receive, inner)
        except Exception as exc:
            await recover(scope, receive, send, ex, exc)
