"""Admin nonces in memory."""

from __future__ import annotations

import copy
from datetime import datetime

from cedros_pay.core.models import AdminNonce, NonceOutcome


class MemoryNonces:
    def __init__(self) -> None:
        self._rows: dict[str, AdminNonce] = {}

    async def create(self, nonce: AdminNonce) -> None:
        if nonce.id in self._rows:
            raise ValueError(f"nonce {nonce.id!r} exists")
        self._rows[nonce.id] = copy.deepcopy(nonce)

    async def consume(
        self, tenant: str, nonce_id: str, purpose: str, now: datetime
    ) -> NonceOutcome:
        n = self._rows.get(nonce_id)
        if n is None or n.tenant_id != tenant:
            return NonceOutcome.NOT_FOUND
        if n.consumed_at is not None:
            return NonceOutcome.ALREADY_USED
        if n.purpose not in (purpose, ""):
            return NonceOutcome.WRONG_PURPOSE
        if now >= n.expires_at:
            return NonceOutcome.EXPIRED
        n.consumed_at = now
        return NonceOutcome.CONSUMED

    async def delete_expired(self, now: datetime) -> int:
        gone = [k for k, n in self._rows.items() if n.expires_at <= now]
        for k in gone:
            del self._rows[k]
        return len(gone)
