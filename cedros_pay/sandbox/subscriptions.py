"""WebSocket `signatureSubscribe` / `signatureUnsubscribe`, in the validator's message shapes.

The sandbox lands a transaction inside the sendTransaction call, so by the time a client
subscribes the signature has usually landed already. A real node would only notify for later
slots; we notify at once instead, otherwise a client that subscribes after sending (every
client) would wait forever here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import orjson
from solders.signature import Signature
from starlette.websockets import WebSocket

from cedros_pay.sandbox.chain import SandboxChain
from cedros_pay.sandbox.errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    transaction_error_json,
)
from cedros_pay.sandbox.ledger import LandedTransaction


class SubscriptionServer:
    """Serves every WebSocket connection of one app; subscription ids are unique across them."""

    def __init__(self, chain: SandboxChain) -> None:
        self.chain = chain
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    async def serve(self, websocket: WebSocket) -> None:
        """The WebSocket endpoint: one connection, until the client leaves."""
        await _Connection(self, websocket).run()


class _Connection:
    def __init__(self, server: SubscriptionServer, websocket: WebSocket) -> None:
        self._server = server
        self._ws = websocket
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._watching: dict[int, Signature] = {}

    async def run(self) -> None:
        await self._ws.accept()
        loop = asyncio.get_running_loop()

        def landed(record: LandedTransaction) -> None:
            # Called from whichever thread landed the transaction.
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody listens
                loop.call_soon_threadsafe(self._landed, record)

        remove = self._server.chain.subscribe(landed)
        writer = asyncio.create_task(self._write())
        try:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode(errors="replace")
                self._handle(text)
        finally:
            remove()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self) -> None:
        while True:
            data = await self._outbox.get()
            await self._ws.send_text(data.decode())

    def _send(self, body: dict[str, Any]) -> None:
        self._outbox.put_nowait(orjson.dumps(body))

    def _handle(self, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._send(_error(None, RpcError(PARSE_ERROR, "Parse error")))
            return
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            self._send(_error(None, RpcError(INVALID_REQUEST, "Invalid request")))
            return
        request_id = request.get("id")
        params = request.get("params")
        try:
            if request["method"] == "signatureSubscribe":
                self._subscribe(request_id, params)
            elif request["method"] == "signatureUnsubscribe":
                self._unsubscribe(request_id, params)
            else:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
        except RpcError as exc:
            self._send(_error(request_id, exc))

    def _subscribe(self, request_id: Any, params: Any) -> None:
        if not isinstance(params, list) or not 1 <= len(params) <= 2:
            raise RpcError(INVALID_PARAMS, "Invalid params: expected [signature, config?]")
        try:
            signature = Signature.from_string(params[0])
        except (TypeError, ValueError):
            raise RpcError(INVALID_PARAMS, "Invalid params: invalid signature") from None
        config = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        subscription = self._server.next_id()
        self._send({"jsonrpc": "2.0", "result": subscription, "id": request_id})
        if config.get("enableReceivedNotification"):
            self._notify(subscription, self._server.chain.slot, "receivedSignature")
        record = self._server.chain.transaction(signature)
        if record is not None:
            self._notify(subscription, record.slot, {"err": transaction_error_json(record.err)})
        else:
            self._watching[subscription] = signature

    def _unsubscribe(self, request_id: Any, params: Any) -> None:
        subscription = params[0] if isinstance(params, list) and params else None
        if not isinstance(subscription, int) or self._watching.pop(subscription, None) is None:
            raise RpcError(INVALID_PARAMS, "Invalid subscription id.")
        self._send({"jsonrpc": "2.0", "result": True, "id": request_id})

    def _landed(self, record: LandedTransaction) -> None:
        done = [sub for sub, sig in self._watching.items() if sig == record.signature]
        for subscription in done:
            del self._watching[subscription]  # signature subscriptions fire once
            self._notify(subscription, record.slot, {"err": transaction_error_json(record.err)})

    def _notify(self, subscription: int, slot: int, value: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": "signatureNotification", "params": {
            "result": {"context": {"slot": slot}, "value": value},
            "subscription": subscription}})


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}
