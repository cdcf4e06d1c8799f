"""Recovery, request id and access log (spec 10's layers 1, 2 and 4) as one layer.

The three always run, always outermost and always in this order, and each only sets
something up before the app and finishes it after, so one frame does all three with the
pieces the separate layers use (`recover`, `assign_request_id`, `AccessLog`). The access
log's clock also covers the real-IP layer (which runs inside). A failure of the access
log itself is recovered too. Websocket and lifespan scopes go through the request-id
layer alone.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from cedros_pay.logs import request_id_var
from cedros_pay.observability.hooks import HTTPHook, HTTPRecorder
from cedros_pay.rest.middleware._asgi import EXCHANGE, Exchange, HeaderBlock
from cedros_pay.rest.middleware.access_log import AccessLog, access_log
from cedros_pay.rest.middleware.recovery import recover
from cedros_pay.rest.middleware.request_id import RequestIdMiddleware, assign_request_id


class RequestEnvelope:
    def __init__(self, app: ASGIApp, hooks: HTTPHook | None = None,
                 logger: logging.Logger = access_log,
                 recorder: HTTPRecorder | None = None) -> None:
        self.app = app
        self.access = AccessLog(hooks, logger, recorder)
        self.other = RequestIdMiddleware(app)  # websocket (and lifespan) scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.other(scope, receive, send)
            return
        started = time.perf_counter()
        ex = scope[EXCHANGE] = Exchange(send)  # the outermost layer opens the Exchange
        rid, extra = assign_request_id(scope)
        ex.edits.append(HeaderBlock(extra, True))  # applied last: the id always wins
        token = request_id_var.set(rid)
        access = self.access
        try:
            hooks = access.begin()
            try:
                await self.app(scope, receive, ex)
            finally:  # logged and counted before recovery answers, as in the stack
                access.end(scope, ex, hooks, started)
        except Exception as exc:  # the app's, or the access log's own
            await recover(scope, receive, send, ex, exc)  # past the Exchange, as before
        finally:
            request_id_var.reset(token)
