"""The background workers (spec 11), built as one list and started together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpx

from cedros_pay.bootstrap.infra import Sweep
from cedros_pay.config import Config
from cedros_pay.config.models import MonitoringConfig
from cedros_pay.core.clock import Clock
from cedros_pay.integrations.solana.wallets import WalletHealth, WalletPool
from cedros_pay.lifecycle import Lifecycle
from cedros_pay.storage.store import Store
from cedros_pay.workers import PeriodicWorker, SupervisedWorker
from cedros_pay.workers.balance_monitor import BalanceMonitor
from cedros_pay.workers.cleanup import Archival, Cleanup


def storage_workers(config: Config, store: Store, clock: Clock,
                    sweeps: Iterable[Sweep] = ()) -> list[SupervisedWorker]:
    """Cleanup, archival when enabled, and the memory backends' sweeps."""
    storage = config.storage
    workers: list[SupervisedWorker] = [
        PeriodicWorker("cleanup", storage.cleanup_interval.total_seconds(), Cleanup(store, clock)),
    ]
    if storage.archival.enabled:
        workers.append(PeriodicWorker(
            "archival", storage.archival.run_interval.total_seconds(),
            Archival(store, clock, storage.archival.retention_period)))
    workers += [PeriodicWorker(s.name, s.interval, s.run) for s in sweeps]
    return workers


def wallet_workers(monitoring: MonitoringConfig, wallets: WalletPool, *,
                   http: httpx.AsyncClient, clock: Clock) -> list[SupervisedWorker]:
    """Wallet health every 5 minutes; low-balance alerts when a URL is configured (the
    pool's critical wallets alert at once, so this wires its callback too)."""
    workers: list[SupervisedWorker] = [SupervisedWorker("wallet_health", wallets.run)]
    m = monitoring
    if m.low_balance_alert_url:
        monitor = BalanceMonitor(
            wallets.addresses, wallets.balance, http=http, url=m.low_balance_alert_url,
            threshold_sol=m.low_balance_threshold, clock=clock,
            headers=dict(m.headers), body_template=m.body_template,
            timeout=m.timeout.total_seconds())
        workers.append(PeriodicWorker("balance_monitor", m.check_interval.total_seconds(),
                                      monitor.check))

        async def alert_critical(health: WalletHealth) -> None:
            await monitor.on_critical(health.address, health.balance_sol)

        wallets.set_critical_callback(alert_critical)
    return workers


def start_workers(workers: Sequence[SupervisedWorker], lifecycle: Lifecycle) -> None:
    """Start each worker; its stop goes to `lifecycle`, so the last started stops first."""
    for worker in workers:
        worker.start()
        lifecycle.push(f"worker:{worker.name}", worker.stop)
