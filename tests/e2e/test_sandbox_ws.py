"""signatureSubscribe over WebSocket: solana-py's client and the raw message shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from solana.rpc.async_api import AsyncClient
from solana.rpc.models import TxOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.responses import SignatureNotification
from solders.signature import Signature

from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as running:
        yield running


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(sandbox.url) as rpc:
        yield rpc


async def test_solana_py_subscriber_is_notified_when_the_payment_lands(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 1_000_000, blockhash=blockhash, memo="ws")
    async with SolanaWsClient(sandbox.ws_url) as ws:
        # Subscribe first (signature known before sending), then send: the normal order.
        subscription = await ws.signature_subscribe(signature=tx.signatures[0],
                                                    commitment="confirmed")
        await client.send_raw_transaction(bytes(tx))
        notification = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(notification, SignatureNotification)
    assert notification.subscription == subscription.subscription_id
    assert notification.result.value.err is None
    status = (await client.get_signature_statuses([tx.signatures[0]])).value[0]
    assert status is not None and notification.result.context.slot == status.slot


async def _exchange(ws: Any, request: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(request))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return reply


async def test_raw_messages_have_the_validator_shapes(sandbox: RunningSandbox,
                                                      client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 2_000_000, blockhash=blockhash)
    await client.send_raw_transaction(bytes(tx))
    slot = (await client.get_signature_statuses([tx.signatures[0]])).value[0].slot  # type: ignore[union-attr]
    async with websockets.connect(sandbox.ws_url) as ws:
        # Already landed: the notification follows the subscription at once.
        reply = await _exchange(ws, {"jsonrpc": "2.0", "id": 7, "method": "signatureSubscribe",
                                     "params": [str(tx.signatures[0]),
                                                {"commitment": "finalized"}]})
        assert reply == {"jsonrpc": "2.0", "result": reply["result"], "id": 7}
        notification = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert notification == {
            "jsonrpc": "2.0", "method": "signatureNotification",
            "params": {"result": {"context": {"slot": slot}, "value": {"err": None}},
                       "subscription": reply["result"]},
        }


async def test_failed_transaction_notifies_its_error(sandbox: RunningSandbox,
                                                     client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 10**12, blockhash=blockhash)
    async with websockets.connect(sandbox.ws_url) as ws:
        await _exchange(ws, {"jsonrpc": "2.0", "id": 1, "method": "signatureSubscribe",
                             "params": [str(tx.signatures[0])]})
        await client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))
        notification = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert notification["params"]["result"]["value"] == {
        "err": {"InstructionError": [0, {"Custom": 1}]}}


async def test_unsubscribe_and_unknown_methods(sandbox: RunningSandbox) -> None:
    never_sent = str(Signature.new_unique())
    async with websockets.connect(sandbox.ws_url) as ws:
        sub = await _exchange(ws, {"jsonrpc": "2.0", "id": 1, "method": "signatureSubscribe",
                                   "params": [never_sent, {"enableReceivedNotification": True}]})
        received = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert received["params"]["result"]["value"] == "receivedSignature"
        done = await _exchange(ws, {"jsonrpc": "2.0", "id": 2, "method": "signatureUnsubscribe",
                                    "params": [sub["result"]]})
        assert done == {"jsonrpc": "2.0", "result": True, "id": 2}
        again = await _exchange(ws, {"jsonrpc": "2.0", "id": 3, "method": "signatureUnsubscribe",
                                     "params": [sub["result"]]})
        assert again["error"]["code"] == -32602
        unknown = await _exchange(ws, {"jsonrpc": "2.0", "id": 4, "method": "rootSubscribe"})
        assert unknown["error"] == {"code": -32601, "message": "Method not found"}


async def test_transactions_landed_from_another_thread_reach_subscribers(
        sandbox: RunningSandbox, client: AsyncClient) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = usdc_transfer(sandbox.devnet, 3_000_000, blockhash=blockhash)
    async with SolanaWsClient(sandbox.ws_url) as ws:
        await ws.signature_subscribe(signature=tx.signatures[0])
        # Test code may land transactions on the chain directly, off the event loop.
        await asyncio.to_thread(sandbox.chain.send_transaction, tx)
        notification = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(notification, SignatureNotification)
