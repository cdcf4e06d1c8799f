"""Payment ledger in memory: replay protection within one process."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from cedros_pay.core.models import PaymentTransaction


class MemoryPayments:
    def __init__(self) -> None:
        self._rows: dict[str, PaymentTransaction] = {}

    async def record(self, tx: PaymentTransaction) -> bool:
        if tx.signature in self._rows:
            return False
        self._rows[tx.signature] = copy.deepcopy(tx)
        return True

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        sigs = [tx.signature for tx in txs]
        if len(set(sigs)) != len(sigs) or any(s in self._rows for s in sigs):
            return False
        for tx in txs:
            self._rows[tx.signature] = copy.deepcopy(tx)
        return True

    async def has_been_processed(self, signature: str) -> bool:
        return signature in self._rows

    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None:
        tx = self._rows.get(signature)
        return copy.deepcopy(tx) if tx is not None and tx.tenant_id == tenant else None

    async def archive_older_than(self, before: datetime) -> int:
        gone = [s for s, tx in self._rows.items() if tx.created_at < before]
        for s in gone:
            del self._rows[s]
        return len(gone)
