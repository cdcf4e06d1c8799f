"""Circuit breakers for the external services (spec 12, spec 13): Solana RPC, Stripe, webhooks.

Closed: calls pass; failures are counted, and the counts reset every `interval`. The
breaker trips open after `consecutive_failures` failures in a row, or once at least
`min_requests` calls were made and `failure_ratio` of them failed. Open: calls fail at
once, without reaching the service, until `timeout` passes. Half-open: up to
`max_requests` trial calls; one failure re-opens, `max_requests` successes close it.

State changes and failures go to a `CircuitBreakerHook` (the Prometheus gauge, logs), and
`snapshot()` exposes the state to health checks and admins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.observability.hooks import (
    CircuitBreakerHook,
    CircuitFailureEvent,
    CircuitStateEvent,
)

log = logging.getLogger("cedros_pay.circuit_breaker")

T = TypeVar("T")

SOLANA_RPC = "solana_rpc"
STRIPE_API = "stripe_api"
WEBHOOK = "webhook"

# The error an open breaker raises, per service: what the caller would have got had the
# service itself failed.
_OPEN_CODES = {SOLANA_RPC: ErrorCode.RPC_ERROR, STRIPE_API: ErrorCode.STRIPE_ERROR,
               WEBHOOK: ErrorCode.NETWORK_ERROR}


class State(IntEnum):
    """Values are spec 14's `circuit_breaker_state` gauge values."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    max_requests: int = 3
    interval: float = 60.0  # seconds; 0 = counts never reset while closed
    timeout: float = 30.0
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    min_requests: int = 10


# Spec 12's defaults.
DEFAULTS: Mapping[str, BreakerSettings] = {
    SOLANA_RPC: BreakerSettings(3, 60.0, 30.0, 5, 0.5, 10),
    STRIPE_API: BreakerSettings(3, 60.0, 30.0, 3, 0.5, 5),
    WEBHOOK: BreakerSettings(5, 60.0, 60.0, 10, 0.7, 20),
}


class CircuitOpenError(CedrosError):
    """Raised instead of calling a service whose breaker is open."""

    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(
            _OPEN_CODES.get(service, ErrorCode.NETWORK_ERROR),
            f"{service} is unavailable (circuit open); try again shortly",
            {"circuit": service, "retryAfterSeconds": round(max(0.0, retry_after), 1)},
        )
        self.service = service


def counts_as_failure(exc: BaseException) -> bool:
    """A service failure, not a caller's mistake: a non-retryable CedrosError (a bad
    signature, an unknown transaction) says the service answered, so it does not count."""
    if isinstance(exc, CedrosError):
        return exc.retryable
    return isinstance(exc, Exception)


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_successes: int = 0
    consecutive_failures: int = 0

    def success(self) -> None:
        self.successes += 1
        self.consecutive_successes += 1
        self.consecutive_failures = 0

    def failure(self) -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.consecutive_successes = 0


class CircuitBreaker:
    def __init__(self, name: str, settings: BreakerSettings, *,
                 hooks: CircuitBreakerHook | None = None, enabled: bool = True,
                 is_failure: Callable[[BaseException], bool] = counts_as_failure,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.settings = settings
        self.enabled = enabled
        self._hooks = hooks
        self._is_failure = is_failure
        self._clock = clock
        self._state = State.CLOSED
        self._counts = _Counts()
        self._generation = 0
        self._expiry = self._next_interval(clock())

    @property
    def state(self) -> State:
        self._advance(self._clock())
        return self._state

    def snapshot(self) -> dict[str, object]:
        state = self.state
        c = self._counts
        return {"state": state.label, "enabled": self.enabled, "requests": c.requests,
                "failures": c.failures, "consecutiveFailures": c.consecutive_failures}

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` through the breaker: refused at once while open."""
        generation = self.before()
        try:
            result = await fn()
        except BaseException as exc:
            self.after(generation, success=not self._is_failure(exc))
            raise
        self.after(generation, success=True)
        return result

    # The two halves of `call`, for callers that cannot wrap a coroutine function.

    def before(self) -> int:
        """Admit one call or raise CircuitOpenError; returns the generation to report to."""
        if not self.enabled:
            return -1
        now = self._clock()
        self._advance(now)
        if self._state is State.OPEN:
            raise CircuitOpenError(self.name, self._expiry - now)
        if self._state is State.HALF_OPEN and self._counts.requests >= self.settings.max_requests:
            raise CircuitOpenError(self.name, 0.0)
        self._counts.requests += 1
        return self._generation

    def after(self, generation: int, *, success: bool) -> None:
        if generation < 0:
            return
        now = self._clock()
        self._advance(now)
        if generation != self._generation:
            return  # the call began before a state change; its result no longer counts
        if success:
            self._on_success(now)
        else:
            self._on_failure(now)

    def _on_success(self, now: float) -> None:
        self._counts.success()
        if (self._state is State.HALF_OPEN
                and self._counts.consecutive_successes >= self.settings.max_requests):
            self._set(State.CLOSED, now)

    def _on_failure(self, now: float) -> None:
        self._counts.failure()
        if self._hooks is not None:
            self._hooks.on_circuit_failure(CircuitFailureEvent(self.name))
        if self._state is State.HALF_OPEN or self._should_trip():
            self._set(State.OPEN, now)

    def _should_trip(self) -> bool:
        s, c = self.settings, self._counts
        if c.consecutive_failures >= s.consecutive_failures:
            return True
        return c.requests >= s.min_requests and c.failures / c.requests >= s.failure_ratio

    def _advance(self, now: float) -> None:
        if self._state is State.CLOSED:
            if self._expiry and self._expiry <= now:
                self._new_generation(now)
        elif self._state is State.OPEN and self._expiry <= now:
            self._set(State.HALF_OPEN, now)

    def _set(self, state: State, now: float) -> None:
        previous, self._state = self._state, state
        self._new_generation(now)
        log.debug("circuit breaker %s: %s -> %s", self.name, previous.label, state.label,
                    extra={"circuit": self.name, "state": state.label})
        if self._hooks is not None:
            self._hooks.on_circuit_state(CircuitStateEvent(self.name, int(state), int(previous)))

    def _new_generation(self, now: float) -> None:
        self._generation += 1
        self._counts = _Counts()
        if self._state is State.OPEN:
            self._expiry = now + self.settings.timeout
        elif self._state is State.CLOSED:
            self._expiry = self._next_interval(now)
        else:
            self._expiry = 0.0

    def _next_interval(self, now: float) -> float:
        return now + self.settings.interval if self.settings.interval > 0 else 0.0


class BreakerSet:
    """The three breakers by service name; what `circuit_breaker_state` reports."""

    def __init__(self, breakers: Mapping[str, CircuitBreaker]) -> None:
        self._breakers = dict(breakers)

    def __getitem__(self, name: str) -> CircuitBreaker:
        return self._breakers[name]

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self._breakers.values())

    @property
    def names(self) -> list[str]:
        return list(self._breakers)

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {name: b.snapshot() for name, b in self._breakers.items()}

    @classmethod
    def build(cls, settings: Mapping[str, BreakerSettings], *, enabled: bool = True,
              hooks: CircuitBreakerHook | None = None,
              clock: Callable[[], float] = time.monotonic) -> BreakerSet:
        return cls({name: CircuitBreaker(name, s, hooks=hooks, enabled=enabled, clock=clock)
                    for name, s in settings.items()})
