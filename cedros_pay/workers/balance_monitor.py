"""Low-balance alerts for the server wallets (spec 11 "Balance Monitoring Worker", spec 09
`monitoring.*`).

Every `check_interval` the monitor reads each server wallet's SOL balance; a wallet below
`low_balance_threshold` triggers one POST to `low_balance_alert_url`, at most once per
wallet per 24 hours, so a wallet that stays low does not spam the channel.

The body is the spec's `{"wallet", "balance", "threshold", "timestamp"}` plus a
Discord-style `content` line (the reference's default target), unless `body_template` is
set: its `{{.Wallet}}`, `{{.Balance}}`, `{{.Threshold}}`, `{{.Timestamp}}` placeholders
(and `{{printf "%.6f" .Balance}}`-style formatting) are filled in and it is sent as is.
Custom headers come from `monitoring.headers` (`MONITORING_HEADER_*`). The alert URL and
header values are credentials and are never logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from cedros_pay.core.clock import Clock
from cedros_pay.logs import truncate_wallet

log = logging.getLogger("cedros_pay.workers.balance_monitor")

LAMPORTS_PER_SOL = 1_000_000_000
ALERT_COOLDOWN = timedelta(hours=24)

_PLACEHOLDER = re.compile(
    r"\{\{\s*(?:printf\s+\"(?P<fmt>%[^\"]*)\"\s+)?\.(?P<name>Wallet|Balance|Threshold|Timestamp)"
    r"\s*\}\}")


def render_template(template: str, values: Mapping[str, Any]) -> str:
    """Fill the reference's Go-template placeholders (only the four documented fields)."""
    def fill(match: re.Match[str]) -> str:
        value = values[match.group("name")]
        fmt = match.group("fmt")
        if fmt:
            try:
                return str(fmt % value)
            except (TypeError, ValueError):
                return str(value)
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


class BalanceMonitor:
    def __init__(self, addresses: Sequence[str], balance: Callable[[str], Awaitable[int]], *,
                 http: httpx.AsyncClient, url: str, threshold_sol: float, clock: Clock,
                 headers: Mapping[str, str] | None = None, body_template: str = "",
                 timeout: float = 5.0) -> None:
        self._addresses = tuple(addresses)
        self._balance = balance
        self._http = http
        self._url = url
        self._threshold = threshold_sol
        self._clock = clock
        self._headers = dict(headers or {})
        self._template = body_template
        self._timeout = timeout
        self._last_alert: dict[str, datetime] = {}
        self.alerts_sent = 0

    async def check(self) -> int:
        """One pass over the wallets; returns the number of alerts sent."""
        sent = 0
        for address in self._addresses:
            try:
                lamports = await self._balance(address)
            except Exception as exc:  # one unreadable wallet must not hide the others
                log.warning("balance read failed for %s: %s", truncate_wallet(address),
                            type(exc).__name__)
                continue
            balance = lamports / LAMPORTS_PER_SOL
            if balance >= self._threshold:
                continue
            now = self._clock.now()
            last = self._last_alert.get(address)
            if last is not None and now - last < ALERT_COOLDOWN:
                continue
            if await self._alert(address, balance, now):
                self._last_alert[address] = now
                sent += 1
        self.alerts_sent += sent
        return sent

    async def on_critical(self, address: str, balance: float) -> bool:
        """The wallet health checker saw `address` turn critical: alert now rather than at
        the next pass, under the same once-a-day throttle. True if an alert went out."""
        now = self._clock.now()
        last = self._last_alert.get(address)
        if last is not None and now - last < ALERT_COOLDOWN:
            return False
        if not await self._alert(address, balance, now):
            return False
        self._last_alert[address] = now
        self.alerts_sent += 1
        return True

    def payload(self, address: str, balance: float, now: datetime) -> tuple[bytes, str]:
        """(body, content type) of one alert."""
        timestamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self._template:
            body = render_template(self._template, {
                "Wallet": address, "Balance": balance, "Threshold": self._threshold,
                "Timestamp": timestamp})
            return body.encode(), "application/json"
        doc = {"wallet": address, "balance": balance, "threshold": self._threshold,
               "timestamp": timestamp,
               "content": f"Low balance: server wallet {address} has {balance:.6f} SOL "
                          f"(threshold {self._threshold:.6f} SOL)"}
        return json.dumps(doc).encode(), "application/json"

    async def _alert(self, address: str, balance: float, now: datetime) -> bool:
        body, content_type = self.payload(address, balance, now)
        headers = {"Content-Type": content_type, **self._headers}
        try:
            response = await self._http.post(self._url, content=body, headers=headers,
                                             timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.error("low-balance alert for %s failed: %s", truncate_wallet(address),
                      type(exc).__name__)
            return False
        if response.status_code >= 400:
            log.error("low-balance alert for %s answered HTTP %d", truncate_wallet(address),
                      response.status_code)
            return False
        log.warning("server wallet %s is low on SOL (%.6f < %.6f); alert sent",
                    truncate_wallet(address), balance, self._threshold)
        return True
