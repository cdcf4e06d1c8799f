"""Payment ledger in memory: replay protection within one process."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from cedros_pay.core.models import (
    STRIPE_SIGNATURE_PREFIX,
    AssetTotal,
    PaymentFilter,
    PaymentTransaction,
)


class MemoryPayments:
    def __init__(self) -> None:
        self._rows: dict[str, PaymentTransaction] = {}
        self._archive: dict[str, PaymentTransaction] = {}  # archived: still used

    async def record(self, tx: PaymentTransaction) -> bool:
        if tx.signature in self._rows or tx.signature in self._archive:
            return False
        self._rows[tx.signature] = copy.deepcopy(tx)
        return True

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        sigs = [tx.signature for tx in txs]
        if len(set(sigs)) != len(sigs) or any(
                s in self._rows or s in self._archive for s in sigs):
            return False
        for tx in txs:
            self._rows[tx.signature] = copy.deepcopy(tx)
        return True

    async def forget(self, signatures: Sequence[str]) -> None:
        """Drop rows by signature (unit-of-work rollback of `record` / `record_many`)."""
        for s in signatures:
            self._rows.pop(s, None)

    async def has_been_processed(self, signature: str) -> bool:
        return signature in self._rows or signature in self._archive

    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None:
        tx = self._rows.get(signature)
        return copy.deepcopy(tx) if tx is not None and tx.tenant_id == tenant else None

    def _matching(self, tenant: str, where: PaymentFilter) -> list[PaymentTransaction]:
        def keep(tx: PaymentTransaction) -> bool:
            stripe = tx.signature.startswith(STRIPE_SIGNATURE_PREFIX)
            return (tx.tenant_id == tenant
                    and where.resource_id in (None, tx.resource_id)
                    and where.wallet in (None, tx.wallet)
                    and (where.method is None or stripe == (where.method == "stripe"))
                    and (where.since is None or tx.created_at >= where.since)
                    and (where.until is None or tx.created_at < where.until))

        return [tx for tx in self._rows.values() if keep(tx)]

    async def page(
        self, tenant: str, where: PaymentFilter, limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> list[PaymentTransaction]:
        rows = sorted(self._matching(tenant, where), key=lambda tx: (tx.created_at, tx.signature),
                      reverse=True)
        if after is not None:
            rows = [tx for tx in rows if (tx.created_at, tx.signature) < after]
        return copy.deepcopy(rows[:limit])

    async def totals(self, tenant: str, where: PaymentFilter) -> list[AssetTotal]:
        sums: dict[str, tuple[int, int]] = {}
        for tx in self._matching(tenant, where):
            n, total = sums.get(tx.asset, (0, 0))
            sums[tx.asset] = (n + 1, total + tx.amount_atomic)
        return [AssetTotal(a, n, total) for a, (n, total) in sorted(sums.items())]

    async def archive_older_than(self, before: datetime) -> int:
        gone = [s for s, tx in self._rows.items() if tx.created_at < before]
        for s in gone:
            self._archive[s] = self._rows.pop(s)
        return len(gone)
