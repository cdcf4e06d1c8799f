"""Server health (spec 02 `/cedros-health`, spec 14 component checks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cedros_pay.core.clock import Clock

log = logging.getLogger("cedros_pay.health")

Probe = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class WalletStatus:
    address: str
    balance_sol: float
    status: str  # healthy | low | critical


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: str  # ok | degraded | error
    uptime: timedelta
    timestamp: datetime
    rpc_healthy: bool
    database_healthy: bool
    route_prefix: str
    network: str
    features: list[str]
    wallet_health: dict[str, WalletStatus] = field(default_factory=dict)


class Health:
    """Runs the component probes; the server is `error` without its database and
    `degraded` when Solana RPC is unreachable (cards may still work)."""

    def __init__(
        self,
        *,
        clock: Clock,
        database: Probe,
        network: str,
        route_prefix: str,
        features: list[str],
        rpc: Probe | None = None,
        wallets: Callable[[], Mapping[str, WalletStatus]] | None = None,
        probe_timeout: float = 2.0,
    ) -> None:
        self._clock = clock
        self._started = clock.now()
        self._database = database
        self._rpc = rpc
        self._wallets = wallets
        self._network = network
        self._prefix = route_prefix
        self._features = list(features)
        self._timeout = probe_timeout

    async def _probe(self, name: str, probe: Probe) -> bool:
        try:
            return await asyncio.wait_for(probe(), self._timeout)
        except Exception as exc:  # a failing probe is a health result, not an error
            log.warning("health probe failed", extra={"component": name, "error": repr(exc)})
            return False

    async def report(self) -> HealthReport:
        db_ok, rpc_ok = await asyncio.gather(
            self._probe("database", self._database),
            self._probe("solana_rpc", self._rpc) if self._rpc else _false(),
        )
        rpc_expected = self._rpc is not None
        status = "error" if not db_ok else ("degraded" if rpc_expected and not rpc_ok else "ok")
        now = self._clock.now()
        return HealthReport(
            status=status, uptime=now - self._started, timestamp=now, rpc_healthy=rpc_ok,
            database_healthy=db_ok, route_prefix=self._prefix, network=self._network,
            features=list(self._features),
            wallet_health=dict(self._wallets()) if self._wallets else {},
        )


async def _false() -> bool:
    return False
