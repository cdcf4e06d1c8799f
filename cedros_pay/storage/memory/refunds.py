"""Refund quotes in memory."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from cedros_pay.core.models import RefundQuote
from cedros_pay.storage.repos import refund_status


class MemoryRefundQuotes:
    def __init__(self) -> None:
        self._rows: dict[str, RefundQuote] = {}

    async def save(self, quote: RefundQuote) -> None:
        await self.save_many([quote])

    async def save_many(self, quotes: Sequence[RefundQuote]) -> None:
        for q in quotes:
            old = self._rows.get(q.id)
            if old is not None and (old.tenant_id != q.tenant_id or old.processed_at):
                continue
            self._rows[q.id] = copy.deepcopy(q)

    async def create_once(self, quote: RefundQuote) -> RefundQuote:
        found = await self.get_by_original_purchase(quote.tenant_id,
                                                    quote.original_purchase_id)
        if found is not None:  # no await between this check and the insert
            return found
        self._rows[quote.id] = copy.deepcopy(quote)
        return copy.deepcopy(quote)

    def _open_in(self, tenant: str, refund_id: str, status: str) -> RefundQuote | None:
        q = self._rows.get(refund_id)
        if q is None or q.tenant_id != tenant or refund_status(q) != status \
                or q.processed_at is not None:
            return None
        return q

    async def transition(self, quote: RefundQuote, from_status: str) -> bool:
        if self._open_in(quote.tenant_id, quote.id, from_status) is None:
            return False
        self._rows[quote.id] = copy.deepcopy(quote)
        return True

    async def delete_if(self, tenant: str, refund_id: str, from_status: str) -> bool:
        if self._open_in(tenant, refund_id, from_status) is None:
            return False
        del self._rows[refund_id]
        return True

    def _visible(self, tenant: str) -> list[RefundQuote]:
        return [q for q in self._rows.values() if q.tenant_id == tenant]

    async def get(self, tenant: str, refund_id: str) -> RefundQuote | None:
        q = self._rows.get(refund_id)
        return copy.deepcopy(q) if q is not None and q.tenant_id == tenant else None

    async def get_by_original_purchase(
        self, tenant: str, original_purchase_id: str
    ) -> RefundQuote | None:
        found = [q for q in self._visible(tenant)
                 if q.original_purchase_id == original_purchase_id]
        return copy.deepcopy(max(found, key=lambda q: q.created_at)) if found else None

    async def list_pending(self, tenant: str) -> list[RefundQuote]:
        pending = [q for q in self._visible(tenant) if q.processed_at is None]
        return copy.deepcopy(sorted(pending, key=lambda q: (q.created_at, q.id)))

    async def mark_processed(
        self, tenant: str, refund_id: str, processed_by: str, signature: str, at: datetime
    ) -> bool:
        q = self._rows.get(refund_id)
        if q is None or q.tenant_id != tenant or q.processed_at is not None:
            return False
        q.processed_by, q.signature, q.processed_at = processed_by, signature, at
        return True

    async def unprocess(self, refund_id: str) -> None:
        """Undo a `mark_processed` (unit-of-work rollback)."""
        if (q := self._rows.get(refund_id)) is not None:
            q.processed_by = q.processed_at = q.signature = None

    async def delete(self, tenant: str, refund_id: str) -> bool:
        q = self._rows.get(refund_id)
        if q is None or q.tenant_id != tenant:
            return False
        del self._rows[refund_id]
        return True

    async def delete_expired_pending(self, before: datetime) -> int:
        gone = [k for k, q in self._rows.items()
                if q.processed_at is None and q.expires_at < before]
        for k in gone:
            del self._rows[k]
        return len(gone)
