"""Solana JSON-RPC 2.0 over HTTP (single and batch) plus the WebSocket API, on one port.

A validator serves WebSockets on port+1 by convention; here both live at "/" of one server
(HTTP POST for requests, a WebSocket upgrade for subscriptions), which clients reach by the
usual http->ws URL derivation.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from cedros_pay.sandbox.chain import SandboxChain
from cedros_pay.sandbox.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)
from cedros_pay.sandbox.faults import Faults
from cedros_pay.sandbox.methods import RpcMethods
from cedros_pay.sandbox.subscriptions import SubscriptionServer

log = logging.getLogger(__name__)

_FAULT_TEXT = {429: "Too many requests for a specific RPC call", 503: "Service unavailable"}


class RpcHandler:
    """Turns request bodies into response bodies; no HTTP in here, so it is easy to test."""

    def __init__(self, methods: RpcMethods) -> None:
        self.methods = methods

    def handle_body(self, body: bytes) -> Any:
        """The reply document for a request body, or None when nothing is to be sent back."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(None, RpcError(PARSE_ERROR, "Parse error"))
        if isinstance(payload, list):
            if not payload:
                return _error(None, RpcError(INVALID_REQUEST, "Invalid request"))
            replies = [reply for reply in map(self.handle_one, payload) if reply is not None]
            return replies or None
        return self.handle_one(payload)

    def handle_one(self, request: Any) -> dict[str, Any] | None:
        if (not isinstance(request, dict) or request.get("jsonrpc") != "2.0"
                or not isinstance(request.get("method"), str)):
            request_id = request.get("id") if isinstance(request, dict) else None
            return _error(request_id, RpcError(INVALID_REQUEST, "Invalid request"))
        request_id = request.get("id")
        handler = self.methods.table.get(request["method"])
        try:
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
            result = handler(request.get("params"))
        except RpcError as exc:
            return _error(request_id, exc)
        except Exception:
            log.exception("sandbox RPC %s failed", request["method"])
            return _error(request_id, RpcError(INTERNAL_ERROR, "Internal error"))
        if "id" not in request:
            return None  # a JSON-RPC notification gets no reply
        return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def create_rpc_app(chain: SandboxChain, faults: Faults | None = None) -> Starlette:
    """The ASGI app: POST / for JSON-RPC, WebSocket / for subscriptions, GET /health."""
    faults = faults or Faults()
    handler = RpcHandler(RpcMethods(chain, faults))

    async def rpc(request: Request) -> Response:
        status = faults.take()
        if status is not None:
            error = RpcError(status, _FAULT_TEXT.get(status, "Injected failure"))
            return _json(_error(None, error), status, {"Retry-After": "1"})
        reply = handler.handle_body(await request.body())
        return Response(b"", 200) if reply is None else _json(reply)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[
        Route("/", rpc, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        WebSocketRoute("/", SubscriptionServer(chain).serve),
    ])
    app.state.chain = chain
    app.state.faults = faults
    return app
