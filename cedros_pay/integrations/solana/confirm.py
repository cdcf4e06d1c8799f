"""Waiting for a payment to land (spec 22 "Confirmation Strategy").

Fast path: one long-lived WebSocket, shared by all payments, with a `signatureSubscribe`
made *before* the transaction is sent, so the notification cannot be missed. While it
waits, a status check every `ws_backstop_interval` covers a node that never notifies
(some do not for signatures that landed before the subscription) and a transaction that
was dropped. Fallback: when the WebSocket cannot connect or breaks, `getSignatureStatuses`
polling every `poll_interval` (spec 07: 2 s). After a WebSocket failure the watcher rests
for `ws_retry_after` seconds, so an outage costs one failed connect, not one per payment.

Expiry: a signature that is nowhere to be seen is checked against its blockhash with
`isBlockhashValid`; once the blockhash is too old the transaction can never land, so the
wait ends at once with `transaction_expired` (the slot-based approach spec 07 mentions,
one call per check). When that call itself fails, spec 07's time-based window
(`blockhash_window`, 90 s) decides. `timeout` (spec 22: 120 s) bounds the whole wait; then
one final check, and `transaction_not_confirmed` (retryable) if still undecided.

RPC faults during the wait are logged and the wait goes on: the payment may well have
landed, and giving up on a status hiccup would lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.solana.rpc import RpcCallError, SolanaRpc, commitment_rank
from cedros_pay.x402.reasons import Reason

log = logging.getLogger("cedros_pay.solana.confirm")

# Early notifications held at most (each names a subscription of ours; see SignatureWatcher).
MAX_EARLY_NOTIFICATIONS = 1024


@dataclass(frozen=True, slots=True)
class ConfirmationSettings:
    timeout: float = 120.0  # spec 22 DefaultConfirmationTimeout
    poll_interval: float = 2.0  # spec 07 RPCPollInterval (fallback only)
    ws_backstop_interval: float = 5.0  # status check while waiting on the WebSocket
    blockhash_window: float = 90.0  # spec 07 BlockhashValidityWindow (when RPC can't say)
    ws_connect_timeout: float = 5.0
    ws_retry_after: float = 30.0


@dataclass(frozen=True, slots=True)
class Confirmation:
    signature: str
    slot: int | None
    err: Any  # the TransactionError, None on success
    status: str | None  # commitment the node reported (None from a notification)
    via: Literal["websocket", "polling"]


class SignatureWatcher:
    """One WebSocket connection multiplexing `signatureSubscribe` for every payment.

    `subscribe` only writes the request; the node's acknowledgement is awaited later
    (`Subscription.ready`), so the transaction can be sent in the meantime: the request is
    on the wire first, and no slot is short enough for the transaction to be confirmed
    before the node has read it. The status backstop covers the impossible case anyway.

    A node may notify before it acknowledges: a validator's pubsub service sends
    notifications from another thread than the one answering the request, so a signature
    that has landed already can be notified ahead of its subscription id. Such an early
    notification is kept while some request still awaits its ack, and handed over when
    the ack names its id; dropping it would leave the payment to the status backstop.
    """

    def __init__(self, url: str, *, connect_timeout: float = 5.0, retry_after: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._connect_timeout = connect_timeout
        self._retry_after = retry_after
        self._clock = clock
        self._conn: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        # Requests awaiting their ack. The reader links each notification future to its
        # subscription id itself, so no notification can slip in between.
        self._pending: dict[int, Subscription] = {}
        self._subs: dict[int, Subscription] = {}
        # Notifications for ids not acknowledged yet, claimable by a pending request only.
        self._early: dict[int, dict[str, Any]] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._unavailable_until = float("-inf")
        self.connects = 0

    @property
    def unclaimed_notifications(self) -> int:
        """Early notifications held for a pending request (none once nothing is pending)."""
        return len(self._early)

    @property
    def available(self) -> bool:
        return self._conn is not None or self._clock() >= self._unavailable_until

    async def subscribe(self, signature: str, commitment: str) -> Subscription | None:
        """A subscription request on the wire, or None when the WebSocket is unavailable."""
        conn = await self._connection()
        if conn is None:
            return None
        loop = asyncio.get_running_loop()
        sub = Subscription(self, next(self._ids), loop.create_future(), loop.create_future(),
                           ack_within=self._connect_timeout)
        self._pending[sub.request_id] = sub
        try:
            await conn.send(json.dumps({"jsonrpc": "2.0", "id": sub.request_id,
                                        "method": "signatureSubscribe",
                                        "params": [signature, {"commitment": commitment}]}))
        except (WebSocketException, OSError) as exc:
            log.warning("signatureSubscribe failed (%s); polling instead", type(exc).__name__)
            self._pending.pop(sub.request_id, None)
            self._rest()
            return None
        return sub

    async def aclose(self) -> None:
        conn, reader = self._conn, self._reader
        self._conn = self._reader = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
        self._release_all()
        for chore in list(self._chores):
            chore.cancel()

    async def _connection(self) -> ClientConnection | None:
        if self._conn is not None:
            return self._conn
        if self._clock() < self._unavailable_until:
            return None
        async with self._lock:
            if self._conn is not None:
                return self._conn
            try:
                conn = await connect(self.url, open_timeout=self._connect_timeout,
                                     max_size=2**20, compression=None, proxy=None)
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("Solana WebSocket %s unavailable (%s); polling for %.0fs",
                            self.url, exc, self._retry_after)
                self._rest()
                return None
            self.connects += 1
            self._conn = conn
            self._reader = asyncio.create_task(self._read(conn), name="solana-ws-reader")
            return conn

    def _rest(self) -> None:
        self._unavailable_until = self._clock() + self._retry_after

    async def _read(self, conn: ClientConnection) -> None:
        try:
            async for message in conn:
                self._dispatch(message)
        except WebSocketException as exc:
            log.warning("Solana WebSocket closed: %s", exc)
        finally:
            if self._conn is conn:
                self._conn = None
            self._release_all()

    def _dispatch(self, message: str | bytes) -> None:
        try:
            doc = orjson.loads(message)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        request_id = doc.get("id")
        sub = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if sub is not None:
            self._acknowledged(sub, doc.get("result"))
            return
        if doc.get("method") != "signatureNotification":
            return
        params = doc.get("params")
        if not isinstance(params, dict):
            return
        result = params.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            return  # e.g. "receivedSignature": not a decision
        subscription = params.get("subscription")
        if not isinstance(subscription, int):
            return
        found = self._subs.pop(subscription, None)
        if found is not None:
            _settle(found.notification, result)
        elif self._pending and len(self._early) < MAX_EARLY_NOTIFICATIONS:
            self._early[subscription] = result  # its ack is still on the way

    def _acknowledged(self, sub: Subscription, result: Any) -> None:
        early = self._early.pop(result, None) if isinstance(result, int) else None
        if not self._pending:
            self._early.clear()  # no request left that could claim them
        if not isinstance(result, int) or isinstance(result, bool):
            _settle(sub.ack, None)  # the node refused the subscription
        elif sub.cancelled:
            if early is None:  # a notified subscription is over at the node already
                self._chore(self._send_unsubscribe(result))
        else:
            sub.id = result
            _settle(sub.ack, result)
            if early is not None:
                _settle(sub.notification, early)
            else:
                self._subs[result] = sub

    def _cancel(self, sub: Subscription) -> None:
        sub.cancelled = True
        if sub.id is None:
            return  # unacknowledged: the reader unsubscribes when the ack arrives
        if self._subs.pop(sub.id, None) is not None:  # else notified: the node dropped it
            self._chore(self._send_unsubscribe(sub.id))

    async def _send_unsubscribe(self, subscription: int) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(WebSocketException, OSError):
            await conn.send(json.dumps({"jsonrpc": "2.0", "id": next(self._ids),
                                        "method": "signatureUnsubscribe",
                                        "params": [subscription]}))

    def _chore(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _refused(self, sub: Subscription) -> None:
        """No ack in time, or a refusal: this WebSocket is no use; rest before retrying."""
        self._pending.pop(sub.request_id, None)
        if not self._pending:
            self._early.clear()
        self._rest()

    def _release_all(self) -> None:
        """Wake every waiter with None ("WebSocket gone"): they fall back to polling."""
        for sub in [*self._pending.values(), *self._subs.values()]:
            _settle(sub.ack, None)
            _settle(sub.notification, None)
        self._pending.clear()
        self._subs.clear()
        self._early.clear()


class Subscription:
    """One `signatureSubscribe`: `ready()` once acknowledged, then `notification`."""

    def __init__(self, watcher: SignatureWatcher, request_id: int,
                 ack: asyncio.Future[int | None],
                 notification: asyncio.Future[dict[str, Any] | None], *,
                 ack_within: float) -> None:
        self._watcher = watcher
        self._ack_within = ack_within
        self.request_id = request_id
        self.ack = ack
        self.notification = notification
        self.id: int | None = None
        self.cancelled = False

    async def ready(self) -> bool:
        """True once the node acknowledged; False means poll instead."""
        try:
            subscription = await asyncio.wait_for(asyncio.shield(self.ack), self._ack_within)
        except TimeoutError:
            subscription = None
        if subscription is None:
            log.warning("signatureSubscribe not acknowledged; polling instead")
            self._watcher._refused(self)
            return False
        return True

    def cancel(self) -> None:
        """Stop watching (idempotent); the unsubscribe request goes out in the background."""
        if not self.cancelled:
            self._watcher._cancel(self)


class Confirmer:
    """Waits for one signature to reach `commitment`; see the module doc for the strategy."""

    def __init__(self, rpc: SolanaRpc, watcher: SignatureWatcher | None, commitment: str,
                 settings: ConfirmationSettings) -> None:
        self.rpc = rpc
        self.watcher = watcher
        self.commitment = commitment
        self.settings = settings

    async def subscribe(self, signature: str) -> Subscription | None:
        if self.watcher is None:
            return None
        return await self.watcher.subscribe(signature, self.commitment)

    async def wait(self, signature: str, blockhash: str | None,
                   subscription: Subscription | None) -> Confirmation:
        """The landed result (success or on-chain error); raises `transaction_expired` or
        `transaction_not_confirmed`."""
        started = time.monotonic()
        deadline = started + self.settings.timeout
        if subscription is not None:
            try:
                found = None
                if await subscription.ready():
                    found = await self._wait_ws(signature, blockhash, subscription, started,
                                                deadline)
            finally:
                subscription.cancel()
            if found is not None:
                return found
        while (remaining := deadline - time.monotonic()) > 0:
            found = await self._check(signature, blockhash, started)
            if found is not None:
                return found
            await asyncio.sleep(min(self.settings.poll_interval, max(remaining, 0.0)))
        found = await self._check(signature, blockhash, started)
        if found is not None:
            return found
        raise CedrosError(ErrorCode.TRANSACTION_NOT_CONFIRMED,
                          f"the transaction did not reach {self.commitment} within "
                          f"{self.settings.timeout:g}s",
                          {"reason": Reason.NOT_CONFIRMED.value, "signature": signature})

    async def _wait_ws(self, signature: str, blockhash: str | None, sub: Subscription,
                       started: float, deadline: float) -> Confirmation | None:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                note = await asyncio.wait_for(
                    asyncio.shield(sub.notification),
                    min(self.settings.ws_backstop_interval, remaining))
            except TimeoutError:
                found = await self._check(signature, blockhash, started)
                if found is not None:
                    return found
                continue
            if note is None:
                log.info("WebSocket lost while confirming; polling")
                return None
            context = note.get("context")
            slot = context.get("slot") if isinstance(context, dict) else None
            return Confirmation(signature, slot if isinstance(slot, int) else None,
                                note["value"].get("err"), None, "websocket")
        return None

    async def _check(self, signature: str, blockhash: str | None,
                     started: float) -> Confirmation | None:
        """One status look-up; None while undecided (RPC faults included). Raises
        transaction_expired once the blockhash can no longer land."""
        try:
            status = (await self.rpc.signature_statuses([signature]))[0]
            if status is not None:
                return self._decided(signature, status)
            if blockhash is None or not await self._expired(blockhash, started):
                return None
            # One last look: it may have landed between the two calls.
            status = (await self.rpc.signature_statuses([signature]))[0]
        except (CedrosError, RpcCallError) as exc:
            log.warning("status check for %s... failed: %s", signature[:8], exc)
            return None
        if status is not None:
            return self._decided(signature, status)
        raise CedrosError(ErrorCode.TRANSACTION_EXPIRED, None,
                          {"reason": Reason.BLOCKHASH_EXPIRED.value, "signature": signature})

    def _decided(self, signature: str, status: dict[str, Any]) -> Confirmation | None:
        slot = status.get("slot")
        reached = status.get("confirmationStatus")
        confirmation = Confirmation(signature, slot if isinstance(slot, int) else None,
                                    status.get("err"), reached if isinstance(reached, str)
                                    else None, "polling")
        if confirmation.err is not None:
            return confirmation  # failed is final whatever the commitment
        if commitment_rank(confirmation.status) >= commitment_rank(self.commitment):
            return confirmation
        return None

    async def _expired(self, blockhash: str, started: float) -> bool:
        try:
            return not await self.rpc.is_blockhash_valid(blockhash, commitment="processed")
        except (CedrosError, RpcCallError):
            return time.monotonic() - started > self.settings.blockhash_window


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)
