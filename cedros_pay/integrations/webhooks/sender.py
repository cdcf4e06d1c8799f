"""One delivery attempt: POST the queued bytes, signed, through the destination's breaker.

2xx is success; any other status, a timeout or a connection error is a failure (spec 20,
with issue 12's settlement: redirects are not followed and count as failures). An open
breaker is neither: the attempt is `Deferred`, and the caller gives the item back to the
queue without spending one of its attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from cedros_pay.core.clock import Clock, to_rfc3339
from cedros_pay.core.models import PendingWebhook
from cedros_pay.integrations.circuit_breaker import (
    BreakerSettings,
    CircuitBreaker,
    CircuitOpenError,
)
from cedros_pay.observability.hooks import CircuitBreakerHook

SIGNATURE_HEADER = "X-Cedros-Signature"
# Headers we set ourselves; configured headers cannot replace them.
_OWN = frozenset({"content-type", "x-cedros-event-type", "x-cedros-delivery-id",
                  "x-cedros-timestamp", "x-cedros-signature", "content-length", "host"})
_ERROR_LIMIT = 500


def sign(secret: str, body: bytes) -> str:
    """`sha256=` + lowercase hex HMAC-SHA256 of the exact body bytes (spec 13)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def destination(url: str) -> str:
    """What a breaker guards: scheme, host and port (paths on one server fail together)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}"


def loggable_url(url: str) -> str:
    """The URL without credentials, query or fragment: what logs and metrics may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class Delivered:
    status: int
    duration: float


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    duration: float


@dataclass(frozen=True, slots=True)
class Deferred:
    """The destination's breaker is open: try again after `retry_after` seconds."""

    retry_after: float


Outcome = Delivered | Failed | Deferred


class DestinationBreakers:
    """A breaker per destination, made on first use with the `webhook` settings."""

    def __init__(self, settings: BreakerSettings, *, enabled: bool = True,
                 hooks: CircuitBreakerHook | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._enabled = enabled
        self._hooks = hooks
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def __call__(self, url: str) -> CircuitBreaker:
        key = destination(url)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(
                f"webhook:{key}", self._settings, hooks=self._hooks, enabled=self._enabled,
                clock=self._clock)
        return breaker

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {name: b.snapshot() for name, b in self._breakers.items()}


class WebhookSender:
    def __init__(self, http: httpx.AsyncClient, *, clock: Clock, timeout: float,
                 breakers: DestinationBreakers, headers: Mapping[str, str] | None = None,
                 secret: str = "") -> None:
        self._http = http
        self._clock = clock
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._breakers = breakers
        self._headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN}
        self._secret = secret

    def headers_for(self, item: PendingWebhook, body: bytes) -> dict[str, str]:
        out = {**self._headers, **{k: v for k, v in item.headers.items()
                                   if k.lower() not in _OWN}}
        out.update({
            "Content-Type": "application/json",
            "X-Cedros-Event-Type": item.event_type,
            "X-Cedros-Delivery-ID": item.id,
            "X-Cedros-Timestamp": to_rfc3339(self._clock.now()),
        })
        if self._secret:
            out[SIGNATURE_HEADER] = sign(self._secret, body)
        return out

    async def send(self, item: PendingWebhook) -> Outcome:
        breaker = self._breakers(item.url)
        try:
            generation = breaker.before()
        except CircuitOpenError as exc:
            return Deferred(float((exc.details or {}).get("retryAfterSeconds") or 0.0))
        body = item.payload.encode()
        started = time.perf_counter()
        try:
            resp = await self._http.post(item.url, content=body,
                                         headers=self.headers_for(item, body),
                                         timeout=self._timeout, follow_redirects=False)
        except httpx.TimeoutException:
            breaker.after(generation, success=False)
            return Failed(f"timeout after {self._timeout.read}s", time.perf_counter() - started)
        except httpx.HTTPError as exc:
            breaker.after(generation, success=False)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return Failed(error[:_ERROR_LIMIT], time.perf_counter() - started)
        duration = time.perf_counter() - started
        if 200 <= resp.status_code < 300:
            breaker.after(generation, success=True)
            return Delivered(resp.status_code, duration)
        breaker.after(generation, success=False)
        return Failed(f"HTTP {resp.status_code}", duration)
