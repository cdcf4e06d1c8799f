"""The shared signatureSubscribe WebSocket against a node that answers in its own order.

A validator's pubsub service sends notifications from another thread than the one that
answers the subscribe request, so a signature that has landed already may be notified
*before* the request's acknowledgement (the subscription id) reaches the client. These
tests run a real WebSocket server on 127.0.0.1 that does exactly that.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from cedros_pay.integrations.solana.confirm import (
    ConfirmationSettings,
    Confirmer,
    SignatureWatcher,
)

SIGNATURE = "5" * 88

Reply = Callable[[int, int], list[dict[str, Any]]]


def _ack(request_id: int, subscription: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": subscription, "id": request_id}


def _note(subscription: int, slot: int = 7) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "signatureNotification",
            "params": {"result": {"context": {"slot": slot}, "value": {"err": None}},
                       "subscription": subscription}}


def notification_first(request_id: int, subscription: int) -> list[dict[str, Any]]:
    return [_note(subscription), _ack(request_id, subscription)]


def ack_first(request_id: int, subscription: int) -> list[dict[str, Any]]:
    return [_ack(request_id, subscription), _note(subscription)]


class Node:
    """Answers each signatureSubscribe with the messages `reply` gives, in that order."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.next_subscription = 100
        self.requests: list[dict[str, Any]] = []

    async def handler(self, ws: ServerConnection) -> None:
        async for raw in ws:
            request = json.loads(raw)
            self.requests.append(request)
            if request["method"] != "signatureSubscribe":
                continue
            self.next_subscription += 1
            for message in self.reply(request["id"], self.next_subscription):
                await ws.send(json.dumps(message))


@pytest.fixture
async def node_url(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Node, str]]:
    node = Node(request.param)
    async with serve(node.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield node, f"ws://127.0.0.1:{port}"


class NeverLandedRpc:
    """The status backstop's view: nothing is known (so only the WebSocket can decide)."""

    def __init__(self) -> None:
        self.status_checks = 0

    async def signature_statuses(self, signatures: list[str]) -> list[None]:
        self.status_checks += 1
        return [None for _ in signatures]

    async def is_blockhash_valid(self, blockhash: str, *, commitment: str) -> bool:
        return True


@pytest.mark.parametrize("node_url", [notification_first, ack_first], indirect=True)
async def test_notification_is_delivered_whatever_its_order_with_the_ack(
        node_url: tuple[Node, str]) -> None:
    _node, url = node_url
    watcher = SignatureWatcher(url, connect_timeout=2)
    rpc = NeverLandedRpc()
    confirmer = Confirmer(rpc, watcher, "confirmed",  # type: ignore[arg-type]
                          ConfirmationSettings(timeout=3, ws_backstop_interval=2))
    try:
        subscription = await confirmer.subscribe(SIGNATURE)
        assert subscription is not None
        found = await asyncio.wait_for(confirmer.wait(SIGNATURE, None, subscription), 1.5)
    finally:
        await watcher.aclose()
    assert found.via == "websocket" and found.slot == 7 and found.err is None
    assert rpc.status_checks == 0  # the backstop was not needed


@pytest.mark.parametrize("node_url", [notification_first], indirect=True)
async def test_many_concurrent_early_notifications_all_arrive(
        node_url: tuple[Node, str]) -> None:
    _node, url = node_url
    watcher = SignatureWatcher(url, connect_timeout=2)
    try:
        subs = [await watcher.subscribe(f"{i}" * 88, "confirmed") for i in range(1, 10)]
        assert all(s is not None for s in subs)
        for sub in subs:
            assert sub is not None and await sub.ready()
        notes = await asyncio.wait_for(
            asyncio.gather(*(s.notification for s in subs if s is not None)), 1.5)
    finally:
        await watcher.aclose()
    assert all(note is not None and note["context"]["slot"] == 7 for note in notes)


async def test_early_notifications_nobody_claims_are_not_kept() -> None:
    """Notifications for ids no pending request can claim are dropped, so the buffer that
    holds early ones stays bounded on a long-lived socket."""
    orphans = 0

    def orphan_then_ack(request_id: int, subscription: int) -> list[dict[str, Any]]:
        nonlocal orphans
        orphans += 1
        return [_note(10_000 + orphans), _ack(request_id, subscription), _note(subscription)]

    node = Node(orphan_then_ack)
    async with serve(node.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        watcher = SignatureWatcher(f"ws://127.0.0.1:{port}", connect_timeout=2)
        try:
            for i in range(1, 6):
                sub = await watcher.subscribe(f"{i}" * 88, "confirmed")
                assert sub is not None and await sub.ready()
                assert await asyncio.wait_for(sub.notification, 1.5) is not None
            assert watcher.unclaimed_notifications == 0
        finally:
            await watcher.aclose()
