"""The transaction queue in front of a real RPC node (the sandbox) that answers 429:
sends are paced, rate-limited sends go back to the front of the line and land."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator

import pytest
from solders.hash import Hash

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.confirm import ConfirmationSettings
from cedros_pay.integrations.solana.rpc import RetryPolicy
from cedros_pay.integrations.solana.tx_queue import TxQueue
from cedros_pay.integrations.solana.verifier import Requirement, SolanaVerifier
from cedros_pay.sandbox.testing import RunningSandbox, running_devnet_sandbox, usdc_transfer
from cedros_pay.x402.cedros_v0 import parse_payment_header
from cedros_pay.x402.schemas import PaymentPayload

FAST = ConfirmationSettings(timeout=3.0, poll_interval=0.02, ws_backstop_interval=0.2,
                            blockhash_window=2.0, ws_connect_timeout=1.0, ws_retry_after=30.0)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with running_devnet_sandbox() as running:
        yield running


def header(tx_bytes: bytes, signature: str) -> PaymentPayload:
    doc = {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
           "payload": {"transaction": base64.b64encode(tx_bytes).decode(),
                       "signature": signature, "resource": "article",
                       "resourceType": "regular"}}
    return parse_payment_header(base64.b64encode(json.dumps(doc).encode()).decode())


def requirement(sb: RunningSandbox) -> Requirement:
    return Requirement(network="devnet", mints=(str(sb.devnet.usdc_mint),), decimals=6,
                       amount_atomic=1_000, recipient_owner=str(sb.wallets.merchant.pubkey()))


def verifier(sb: RunningSandbox, queue: TxQueue) -> SolanaVerifier:
    return SolanaVerifier(sb.url, network="devnet", confirmation=FAST, use_websocket=False,
                          retry=RetryPolicy(base_delay=0.005, max_delay=0.02), tx_queue=queue)


async def test_rate_limited_send_is_retried_by_the_queue_and_lands(
        sandbox: RunningSandbox) -> None:
    queue = TxQueue(backoff=0.02)
    v = verifier(sandbox, queue)
    try:
        bh: Hash = sandbox.chain.latest_block.blockhash
        tx = usdc_transfer(sandbox.devnet, 1_000, blockhash=bh)
        sandbox.server.faults.fail_next(2, status=429)
        result = await v.verify(header(bytes(tx), str(tx.signatures[0])), requirement(sandbox))
        assert result.signature == str(tx.signatures[0])
        stats = queue.stats()
        assert (stats.retried, stats.sent, stats.failed) == (2, 1, 0)
        times = [t for _, t in queue.send_log]
        assert len(times) == 3 and times[2] - times[1] >= 0.035  # 20 ms, then 40 ms
    finally:
        await queue.shutdown()
        await v.aclose()


async def test_queue_gives_up_after_three_rate_limited_retries(
        sandbox: RunningSandbox) -> None:
    queue = TxQueue(backoff=0.005)
    v = verifier(sandbox, queue)
    try:
        tx = usdc_transfer(sandbox.devnet, 1_000, blockhash=sandbox.chain.latest_block.blockhash)
        sandbox.server.faults.fail_next(10, status=429)
        with pytest.raises(CedrosError) as caught:
            await v.verify(header(bytes(tx), str(tx.signatures[0])), requirement(sandbox))
        assert caught.value.code is ErrorCode.RPC_ERROR
        assert len(queue.send_log) == 4 and queue.stats().failed == 1
        assert sandbox.chain.status(tx.signatures[0]) is None
    finally:
        sandbox.server.faults.fail_next(0)
        await queue.shutdown()
        await v.aclose()


async def test_queue_spaces_and_orders_payments(sandbox: RunningSandbox) -> None:
    queue = TxQueue(min_time_between=0.05, max_in_flight=1)
    v = verifier(sandbox, queue)
    try:
        bh = sandbox.chain.latest_block.blockhash
        txs = [usdc_transfer(sandbox.devnet, 1_000 + i, blockhash=bh) for i in range(3)]
        results = await asyncio.gather(*(
            v.verify(header(bytes(tx), str(tx.signatures[0])), requirement(sandbox))
            for tx in txs))
        assert [r.amount_atomic for r in results] == [1_000, 1_001, 1_002]
        ids = [name for name, _ in queue.send_log]
        assert ids == [str(tx.signatures[0])[:8] for tx in txs]
        times = [t for _, t in queue.send_log]
        assert all(b - a >= 0.045 for a, b in itertools.pairwise(times))
    finally:
        await queue.shutdown()
        await v.aclose()
