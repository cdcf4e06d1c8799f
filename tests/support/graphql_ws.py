"""A real server and a real graphql-transport-ws client, for the subscription tests.

The app runs under uvicorn on a loopback port with its lifespan on (as `cedros-pay
serve` runs it), and the client is the `websockets` package speaking the protocol
message by message, so nothing in-process stands in for the WebSocket path.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from cedros_pay.app import CedrosApp

from . import waiting

PROTOCOL = Subprotocol("graphql-transport-ws")
WAIT = 15.0  # seconds; generous for a loaded CI machine, never reached when things work


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: CedrosApp) -> AsyncIterator[str]:
    """`app` under uvicorn on 127.0.0.1 (lifespan on) for the block; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no start event
        if task.done():
            task.result()  # surfaces a start-up failure instead of spinning
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=WAIT)


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` holds; the server offers no event for "subscribed"."""
    await waiting.eventually(check, what, within=WAIT)


class GraphQLSocket:
    """One graphql-transport-ws connection, driven message by message."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @asynccontextmanager
    async def open(cls, base_url: str, path: str = "/graphql",
                   headers: Mapping[str, str] | None = None) -> AsyncIterator[GraphQLSocket]:
        url = base_url.replace("http://", "ws://", 1) + path
        async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers,
                           open_timeout=WAIT) as ws:
            assert ws.subprotocol == PROTOCOL
            yield cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next protocol message; pings are answered and skipped."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=WAIT)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(self, op_id: str, query: str,
                        variables: dict[str, Any] | None = None) -> None:
        await self.send({"id": op_id, "type": "subscribe",
                         "payload": {"query": query, "variables": variables or {}}})

    async def complete(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete"})

    async def closed_with(self) -> int | None:
        """The close code the server ended the connection with."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout=WAIT)
        return self.ws.close_code
