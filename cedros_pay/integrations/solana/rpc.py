"""Solana JSON-RPC with spec 12's retry policy behind a circuit breaker.

Why not solana-py's `AsyncClient`: it folds HTTP statuses into one exception type, which
hides the 429 / 5xx / timeout split the retry policy needs, and it parses JSON-RPC errors
into typed objects that drop the simulation logs the error mapping reads. Plain JSON-RPC is
~100 lines and keeps every field.

The HTTP under it is an `RpcTransport`: by default the lean keep-alive client of
`integrations/keepalive_http.py` (httpx costs ~1 ms of CPU per call, a fifth of a
settlement's), or httpx when a client is injected (tests, a caller's own client) or the
environment asks for a proxy.

Retry policy (spec 12 "RPC Retry Logic", spec 22 "Complete Transaction Retry Policy"):
HTTP 429, HTTP 5xx and a JSON-RPC "too many requests" / "node is behind" answer are retried
up to `max_retries` times, timeouts and connection failures up to `max_transport_retries`
times, with exponential backoff from `base_delay` capped at `max_delay`, and never past
`max_total` seconds from the first attempt. Everything else (a JSON-RPC error such as a
failed simulation, another 4xx) is an answer, not a fault, and is returned at once.
Re-sending a signed transaction is safe: the same bytes can land at most once.

Each HTTP attempt passes through the breaker; only transport faults count as failures,
so a stream of refused payments never trips it, and an open breaker fails at once
(`rpc_error`) without touching the network.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from cedros_pay.core.errors import CedrosError, ErrorCode, is_rate_limit_error
from cedros_pay.integrations.keepalive_http import ConnectionFailed, KeepAlivePool, Reply, proxied
from cedros_pay.observability.hooks import RPCCallEvent
from cedros_pay.x402.reasons import Reason

log = logging.getLogger("cedros_pay.solana.rpc")

# JSON-RPC codes a validator uses (agave rpc/custom_error.rs).
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
SIGNATURE_VERIFICATION_FAILURE = -32003
NODE_UNHEALTHY = -32005
INVALID_PARAMS = -32602

COMMITMENTS = ("processed", "confirmed", "finalized")
_JSON_HEADERS = {"Content-Type": "application/json"}


def commitment_rank(value: str | None) -> int:
    """processed < confirmed < finalized; a missing status means rooted (finalized)."""
    if value is None:
        return 2
    try:
        return COMMITMENTS.index(value)
    except ValueError:
        return 2


class RpcTransport(Protocol):
    """POSTs a JSON-RPC body; raises TimeoutError or ConnectionFailed on transport faults."""

    async def post(self, body: bytes, time_limit: float) -> Reply: ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """An `RpcTransport` over an httpx client. `aclose()` closes that client: whoever made
    the transport decides whether to call it (`SolanaRpc` does only for its own)."""

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self._url = url
        self._http = http

    async def post(self, body: bytes, time_limit: float) -> Reply:
        try:
            response = await self._http.post(self._url, content=body, headers=_JSON_HEADERS,
                                             timeout=time_limit)
        except httpx.TimeoutException as exc:
            raise TimeoutError(type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(str(exc)) from None
        return Reply(response.status_code, response.content,
                     response.headers.get("retry-after"))

    async def aclose(self) -> None:
        await self._http.aclose()


def default_transport(url: str) -> RpcTransport:
    """The keep-alive client, or httpx (which honours proxies) when a proxy applies."""
    if proxied(url):
        return HttpxTransport(url, httpx.AsyncClient())
    return KeepAlivePool(url)


class Breaker(Protocol):
    """The two halves of `circuit_breaker.CircuitBreaker.call` this client needs."""

    def before(self) -> int: ...

    def after(self, generation: int, *, success: bool) -> None: ...


class RpcHook(Protocol):
    def on_rpc_call(self, event: RPCCallEvent) -> None: ...


class RpcCallError(Exception):
    """The node answered with a JSON-RPC error object (not a transport fault)."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    @property
    def err(self) -> Any:
        """The TransactionError of a failed simulation (`data.err`), if any."""
        return self.data.get("err") if isinstance(self.data, dict) else None

    @property
    def logs(self) -> list[str]:
        logs = self.data.get("logs") if isinstance(self.data, dict) else None
        return [str(line) for line in logs] if isinstance(logs, list) else []

    @property
    def text(self) -> str:
        """Everything a text classifier may match on: message, error, logs."""
        err = self.err
        parts = [self.message]
        if err is not None:
            parts.append(err if isinstance(err, str) else json.dumps(err))
        parts.extend(self.logs)
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3  # 429, 5xx, "node behind"
    max_transport_retries: int = 2  # timeouts, refused connections
    base_delay: float = 0.1  # seconds; doubles per retry (spec 12)
    max_delay: float = 2.0
    max_total: float = 120.0  # spec 22 "Retry Timeout"

    def delay(self, retry: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


class _Transient(Exception):
    """One failed attempt worth retrying; becomes a CedrosError when retries run out."""

    def __init__(self, code: ErrorCode, message: str, *, transport: bool,
                 retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transport = transport
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class SolanaRpc:
    """JSON-RPC calls against one endpoint, over `transport`, or httpx on `http`, or the
    default transport; `aclose()` closes the transport if it made it."""

    def __init__(self, url: str, *, http: httpx.AsyncClient | None = None,
                 transport: RpcTransport | None = None, retry: RetryPolicy | None = None,
                 breaker: Breaker | None = None, request_timeout: float = 15.0,
                 hook: RpcHook | None = None) -> None:
        if not url:
            raise CedrosError(ErrorCode.CONFIG_ERROR, "x402 rpc_url is required")
        self.url = url
        self.retry = retry or RetryPolicy()
        self._owns_transport = transport is None and http is None
        if transport is None:
            transport = HttpxTransport(url, http) if http is not None else default_transport(url)
        self._transport = transport
        self._timeout = request_timeout
        self._breaker = breaker
        self._hook = hook
        self._ids = 0
        self.attempts = 0  # HTTP attempts made, retries included (for tests and metrics)

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    # --- typed calls --------------------------------------------------------------------

    async def send_transaction(self, raw: bytes, *, skip_preflight: bool,
                               preflight_commitment: str = "confirmed",
                               retry: RetryPolicy | None = None) -> str:
        """The signature the node reports; a JSON-RPC refusal raises RpcCallError. `retry`
        replaces the client's policy for this send (a queue with its own backoff)."""
        config = {"encoding": "base64", "skipPreflight": skip_preflight,
                  "preflightCommitment": preflight_commitment}
        result = await self.call("sendTransaction", [base64.b64encode(raw).decode(), config],
                                 retry=retry)
        return str(result)

    async def signature_statuses(self, signatures: Sequence[str], *,
                                 search_history: bool = False) -> list[dict[str, Any] | None]:
        result = await self.call("getSignatureStatuses", [
            list(signatures), {"searchTransactionHistory": search_history}])
        values = result.get("value") if isinstance(result, dict) else None
        if not isinstance(values, list) or len(values) != len(signatures):
            raise CedrosError(ErrorCode.RPC_ERROR, "getSignatureStatuses returned a bad shape",
                              {"reason": Reason.RPC_UNAVAILABLE.value})
        return [v if isinstance(v, dict) else None for v in values]

    async def is_blockhash_valid(self, blockhash: str, *, commitment: str = "processed") -> bool:
        result = await self.call("isBlockhashValid", [blockhash, {"commitment": commitment}])
        return bool(result.get("value")) if isinstance(result, dict) else False

    async def latest_blockhash(self, *, commitment: str = "confirmed") -> tuple[str, int]:
        """(blockhash, lastValidBlockHeight), for transaction builders."""
        result = await self.call("getLatestBlockhash", [{"commitment": commitment}])
        value = result["value"]
        return str(value["blockhash"]), int(value["lastValidBlockHeight"])

    async def health(self, time_limit: float | None = None) -> bool:
        """One `getHealth` attempt, no retries, within `time_limit` seconds (default: the
        client's request timeout): a probe must answer fast. An open breaker answers False
        at once, without a request."""
        try:
            return bool(await self._attempt("getHealth", [], time_limit) == "ok")
        except (CedrosError, _Transient, RpcCallError):
            return False

    # --- the retry loop -----------------------------------------------------------------

    async def call(self, method: str, params: list[Any], *,
                   retry: RetryPolicy | None = None) -> Any:
        """`result` of one JSON-RPC request, retrying transient faults (module doc) under
        `retry`, or the client's policy."""
        policy = retry or self.retry
        started = time.monotonic()
        retries = transport_retries = 0
        while True:
            try:
                return await self._attempt(method, params)
            except _Transient as fault:
                if fault.transport:
                    transport_retries += 1
                    allowed = transport_retries <= policy.max_transport_retries
                    retry_number = transport_retries
                else:
                    retries += 1
                    allowed = retries <= policy.max_retries
                    retry_number = retries
                delay = policy.delay(retry_number)
                if fault.retry_after is not None:
                    delay = min(max(delay, fault.retry_after), policy.max_delay)
                out_of_time = time.monotonic() - started + delay > policy.max_total
                if not allowed or out_of_time:
                    # `rateLimited` lets a caller with its own backoff (the transaction
                    # queue) tell a 429 from other faults without reading the message.
                    raise CedrosError(fault.code, f"Solana RPC {method} failed: {fault.message}",
                                      {"reason": Reason.RPC_UNAVAILABLE.value,
                                       "attempts": retries + transport_retries,
                                       "rateLimited": fault.rate_limited}) from None
                log.info("retrying Solana RPC %s in %.2fs after: %s", method, delay,
                         fault.message)
                await asyncio.sleep(delay)

    async def _attempt(self, method: str, params: list[Any],
                       time_limit: float | None = None) -> Any:
        generation = self._breaker.before() if self._breaker is not None else -1
        self.attempts += 1
        self._ids += 1
        body = {"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        started = time.perf_counter()
        fault: _Transient | None = None
        try:
            return self._result(method, await self._post(body, time_limit))
        except _Transient as exc:
            fault = exc
            raise
        finally:
            if self._breaker is not None:
                self._breaker.after(generation, success=fault is None)
            self._observe(method, time.perf_counter() - started, fault)

    async def _post(self, body: dict[str, Any], time_limit: float | None) -> Reply:
        try:
            reply = await self._transport.post(orjson.dumps(body), time_limit or self._timeout)
        except TimeoutError as exc:
            raise _Transient(ErrorCode.NETWORK_ERROR, f"timeout ({exc or 'no reply'})",
                             transport=True) from None
        except ConnectionFailed as exc:
            raise _Transient(ErrorCode.NETWORK_ERROR, f"connection failed ({exc})",
                             transport=True) from None
        status = reply.status
        if status == 429 or status >= 500:
            raise _Transient(ErrorCode.RPC_ERROR, f"HTTP {status}", transport=False,
                             retry_after=_retry_after(reply.retry_after),
                             rate_limited=status == 429)
        return reply

    def _result(self, method: str, reply: Reply) -> Any:
        if reply.status >= 400:
            raise CedrosError(ErrorCode.RPC_ERROR,
                              f"Solana RPC {method} answered HTTP {reply.status}",
                              {"reason": Reason.RPC_UNAVAILABLE.value})
        try:
            doc = orjson.loads(reply.body)
        except ValueError:
            raise _Transient(ErrorCode.RPC_ERROR, "the reply is not JSON",
                             transport=False) from None
        if not isinstance(doc, dict):
            raise _Transient(ErrorCode.RPC_ERROR, "the reply is not a JSON-RPC object",
                             transport=False)
        error = doc.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message", ""))
            if code == NODE_UNHEALTHY or is_rate_limit_error(message):
                raise _Transient(ErrorCode.RPC_ERROR, message or "node unhealthy",
                                 transport=False, rate_limited=code != NODE_UNHEALTHY)
            raise RpcCallError(method, int(code) if isinstance(code, int) else 0, message,
                               error.get("data"))
        if "result" not in doc:
            raise _Transient(ErrorCode.RPC_ERROR, "the reply has no result", transport=False)
        return doc["result"]

    def _observe(self, method: str, duration: float, fault: _Transient | None) -> None:
        if self._hook is None:
            return
        try:
            self._hook.on_rpc_call(RPCCallEvent(method, duration, fault is None,
                                                fault.code.value if fault else ""))
        except Exception:  # observability must never change an outcome (spec 15)
            log.exception("RPC hook failed")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
