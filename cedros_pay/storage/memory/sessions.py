"""Stripe sessions in memory."""

from __future__ import annotations

import copy
from datetime import datetime

from cedros_pay.core.models import StripeSession, StripeSessionStatus


class MemoryStripeSessions:
    def __init__(self) -> None:
        self._rows: dict[str, StripeSession] = {}

    async def save(self, session: StripeSession) -> None:
        old = self._rows.get(session.id)
        if old is None or old.tenant_id == session.tenant_id:
            self._rows[session.id] = copy.deepcopy(session)

    async def get(self, tenant: str, session_id: str) -> StripeSession | None:
        s = self._rows.get(session_id)
        return copy.deepcopy(s) if s is not None and s.tenant_id == tenant else None

    def row(self, session_id: str) -> StripeSession | None:
        """A copy of the stored row, whatever its tenant (for a unit-of-work undo)."""
        s = self._rows.get(session_id)
        return copy.deepcopy(s) if s is not None else None

    async def restore(self, session_id: str, row: StripeSession | None) -> None:
        """Put back what `row` returned (unit-of-work rollback of `save`/`mark_completed`)."""
        if row is None:
            self._rows.pop(session_id, None)
        else:
            self._rows[session_id] = row

    async def mark_completed(self, tenant: str, session_id: str, at: datetime) -> bool:
        s = self._rows.get(session_id)
        if s is None or s.tenant_id != tenant or s.status is not StripeSessionStatus.PENDING:
            return False
        s.status, s.completed_at = StripeSessionStatus.COMPLETED, at
        return True
