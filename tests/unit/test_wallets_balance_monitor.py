"""Low-balance alerts (spec 11 "Balance Monitoring Worker"): the spec's payload, custom
headers, a body template, and one alert per wallet per 24 hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from cedros_pay.core.clock import ManualClock
from cedros_pay.workers.balance_monitor import BalanceMonitor, render_template

LOW = "LowWa11et1111111111111111111111111111111111"
RICH = "RichWa11et111111111111111111111111111111111"


class Hook:
    """An alert receiver: records every request (no network)."""

    def __init__(self, status: int = 204) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)


def monitor_for(hook: Hook, clock: ManualClock, balances: dict[str, int], *,
                headers: dict[str, str] | None = None, body_template: str = "") -> BalanceMonitor:
    async def balance(address: str) -> int:
        return balances[address]

    http = httpx.AsyncClient(transport=httpx.MockTransport(hook))
    return BalanceMonitor([LOW, RICH], balance, http=http, url="https://alerts.example/hook",
                          threshold_sol=0.01, clock=clock, headers=headers,
                          body_template=body_template)


async def test_low_wallet_alert_has_spec_payload_and_custom_headers() -> None:
    hook, clock = Hook(), ManualClock(datetime(2025, 12, 1, 10, tzinfo=UTC))
    monitor = monitor_for(hook, clock, {LOW: 5_000_000, RICH: 10**9},
                          headers={"Authorization": "Bearer s3cret"})
    assert await monitor.check() == 1
    (request,) = hook.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    body = json.loads(request.content)
    assert {k: body[k] for k in ("wallet", "balance", "threshold", "timestamp")} == {
        "wallet": LOW, "balance": 0.005, "threshold": 0.01,
        "timestamp": "2025-12-01T10:00:00Z"}


async def test_one_alert_per_wallet_per_day() -> None:
    hook, clock = Hook(), ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
    monitor = monitor_for(hook, clock, {LOW: 0, RICH: 10**9})
    assert await monitor.check() == 1
    clock.advance(timedelta(hours=23, minutes=59))
    assert await monitor.check() == 0
    clock.advance(timedelta(minutes=1))
    assert await monitor.check() == 1
    assert len(hook.requests) == 2


async def test_failed_delivery_is_retried_next_pass() -> None:
    hook, clock = Hook(status=500), ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
    monitor = monitor_for(hook, clock, {LOW: 0, RICH: 10**9})
    assert await monitor.check() == 0
    hook.status = 200
    assert await monitor.check() == 1


async def test_body_template_is_filled() -> None:
    hook, clock = Hook(), ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
    template = '{"content":"Wallet {{.Wallet}} has {{printf "%.6f" .Balance}} SOL"}'
    monitor = monitor_for(hook, clock, {LOW: 1_500_000, RICH: 10**9}, body_template=template)
    await monitor.check()
    assert json.loads(hook.requests[0].content) == {
        "content": f"Wallet {LOW} has 0.001500 SOL"}
    assert render_template("{{ .Threshold }}", {"Threshold": 0.01}) == "0.01"


async def test_critical_wallet_alerts_at_once_within_the_same_throttle() -> None:
    hook, clock = Hook(), ManualClock(datetime(2025, 12, 1, tzinfo=UTC))
    monitor = monitor_for(hook, clock, {LOW: 500_000, RICH: 10**9})
    assert await monitor.on_critical(LOW, 0.0005)
    assert await monitor.check() == 0  # already alerted today
    assert len(hook.requests) == 1
