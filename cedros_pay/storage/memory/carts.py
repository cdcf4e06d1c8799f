"""Cart quotes in memory (tests and the `memory` backend).

Memory repositories never await between a check and a write, so each method is atomic on
the event loop; records are copied in and out so callers cannot mutate stored state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from cedros_pay.core.models import CartQuote


class MemoryCartQuotes:
    def __init__(self) -> None:
        self._rows: dict[str, CartQuote] = {}

    async def save(self, quote: CartQuote) -> None:
        await self.save_many([quote])

    async def save_many(self, quotes: Sequence[CartQuote]) -> None:
        for q in quotes:
            old = self._rows.get(q.id)
            if old is not None and old.tenant_id != q.tenant_id:
                continue
            self._rows[q.id] = copy.deepcopy(q)

    async def get(self, tenant: str, cart_id: str) -> CartQuote | None:
        q = self._rows.get(cart_id)
        return copy.deepcopy(q) if q is not None and q.tenant_id == tenant else None

    async def get_many(self, tenant: str, cart_ids: Sequence[str]) -> list[CartQuote]:
        return [q for i in cart_ids if (q := await self.get(tenant, i)) is not None]

    async def mark_paid(self, tenant: str, cart_id: str, wallet: str) -> bool:
        q = self._rows.get(cart_id)
        if q is None or q.tenant_id != tenant or q.wallet_paid_by:
            return False
        q.wallet_paid_by = wallet
        return True

    async def has_access(self, tenant: str, cart_id: str, wallet: str) -> bool:
        q = self._rows.get(cart_id)
        return q is not None and q.tenant_id == tenant and q.wallet_paid_by == wallet

    async def delete_expired(self, before: datetime) -> int:
        gone = [k for k, q in self._rows.items() if q.expires_at < before and not q.is_paid]
        for k in gone:
            del self._rows[k]
        return len(gone)
