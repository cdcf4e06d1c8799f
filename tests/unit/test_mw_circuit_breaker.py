"""Circuit breakers (spec 12 defaults, spec 13 states, spec 14 gauge)."""

from __future__ import annotations

import contextlib

import pytest

from cedros_pay.bootstrap.infra import build_infra
from cedros_pay.config import Config
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.circuit_breaker import (
    DEFAULTS,
    BreakerSettings,
    CircuitBreaker,
    CircuitOpenError,
    State,
)
from cedros_pay.observability.hooks import BaseHook, CircuitFailureEvent, CircuitStateEvent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorder(BaseHook):
    def __init__(self) -> None:
        self.states: list[tuple[str, int, int]] = []
        self.failures = 0

    def on_circuit_state(self, event: CircuitStateEvent) -> None:
        self.states.append((event.service, event.previous, event.state))

    def on_circuit_failure(self, event: CircuitFailureEvent) -> None:
        self.failures += 1


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise ConnectionError("down")


def breaker(settings: BreakerSettings = DEFAULTS["stripe_api"], *, enabled: bool = True
            ) -> tuple[CircuitBreaker, Clock, Recorder]:
    clock, hooks = Clock(), Recorder()
    cb = CircuitBreaker("stripe_api", settings, clock=clock, hooks=hooks, enabled=enabled)
    return cb, clock, hooks


def test_spec12_defaults() -> None:
    assert DEFAULTS["solana_rpc"] == BreakerSettings(3, 60, 30, 5, 0.5, 10)
    assert DEFAULTS["stripe_api"] == BreakerSettings(3, 60, 30, 3, 0.5, 5)
    assert DEFAULTS["webhook"] == BreakerSettings(5, 60, 60, 10, 0.7, 20)
    cb = Config().circuit_breaker
    assert (cb.webhook.consecutive_failures, cb.webhook.failure_ratio) == (10, 0.7)
    infra = build_infra(Config())
    assert infra.breakers.names == ["solana_rpc", "stripe_api", "webhook"]
    assert infra.breakers["webhook"].settings.timeout == 60


async def test_trips_after_consecutive_failures_then_fails_fast() -> None:
    cb, _, hooks = breaker()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await cb.call(boom)
    assert cb.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await cb.call(ok)
    assert info.value.code is ErrorCode.STRIPE_ERROR and info.value.retryable
    assert hooks.states == [("stripe_api", 0, 2)] and hooks.failures == 3


async def test_trips_on_failure_ratio_after_min_requests() -> None:
    cb, _, _ = breaker(BreakerSettings(consecutive_failures=100, failure_ratio=0.5,
                                       min_requests=4))
    for fn in (ok, boom, ok, boom):
        with contextlib.suppress(ConnectionError):
            await cb.call(fn)
    assert cb.state is State.OPEN


async def test_half_open_after_timeout_closes_on_successes() -> None:
    cb, clock, hooks = breaker()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await cb.call(boom)
    clock.now += 30
    assert cb.state is State.HALF_OPEN
    for _ in range(3):
        assert await cb.call(ok) == "ok"
    assert cb.state is State.CLOSED
    assert [s[2] for s in hooks.states] == [2, 1, 0]


async def test_half_open_failure_reopens_and_trials_are_limited() -> None:
    cb, clock, _ = breaker()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await cb.call(boom)
    clock.now += 30
    generations = [cb.before() for _ in range(3)]  # three trials in flight
    with pytest.raises(CircuitOpenError):
        cb.before()  # a fourth is refused while half-open
    cb.after(generations[0], success=False)
    assert cb.state is State.OPEN


async def test_counts_reset_every_interval_while_closed() -> None:
    cb, clock, _ = breaker()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await cb.call(boom)
    clock.now += 61
    with pytest.raises(ConnectionError):
        await cb.call(boom)
    assert cb.state is State.CLOSED


async def test_caller_errors_do_not_count_and_disabled_breaker_passes() -> None:
    cb, _, _ = breaker()

    async def bad_input() -> str:
        raise CedrosError(ErrorCode.INVALID_SIGNATURE)

    for _ in range(10):
        with pytest.raises(CedrosError):
            await cb.call(bad_input)
    assert cb.state is State.CLOSED
    off, _, _ = breaker(enabled=False)
    for _ in range(10):
        with pytest.raises(ConnectionError):
            await off.call(boom)
    assert await off.call(ok) == "ok"


async def test_state_is_exposed_as_snapshot_and_gauge() -> None:
    infra = build_infra(Config())
    cb = infra.breakers["solana_rpc"]
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await cb.call(boom)
    snap = infra.breakers.snapshot()
    assert snap["solana_rpc"]["state"] == "open" and snap["stripe_api"]["state"] == "closed"
    text = infra.metrics.exposition()[0].decode()
    assert 'circuit_breaker_state{service="solana_rpc"} 2.0' in text
    assert 'circuit_breaker_state{service="webhook"} 0.0' in text
    assert 'circuit_breaker_failures_total{service="solana_rpc"} 5.0' in text
