"""Idempotency responses in memory, each with its request's fingerprint (copied in and
out, as a database would)."""

from __future__ import annotations

import copy
from datetime import datetime

from cedros_pay.core.models import StoredResponse


class MemoryIdempotency:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], StoredResponse] = {}

    async def save(self, tenant: str, key: str, response: StoredResponse) -> None:
        self._rows[(tenant, key)] = copy.deepcopy(response)

    async def get(self, tenant: str, key: str, now: datetime) -> StoredResponse | None:
        r = self._rows.get((tenant, key))
        return copy.deepcopy(r) if r is not None and r.expires_at > now else None

    async def delete(self, tenant: str, key: str) -> None:
        self._rows.pop((tenant, key), None)

    async def delete_expired(self, now: datetime) -> int:
        gone = [k for k, r in self._rows.items() if r.expires_at <= now]
        for k in gone:
            del self._rows[k]
        return len(gone)
