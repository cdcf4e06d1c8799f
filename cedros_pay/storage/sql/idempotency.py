"""Idempotency responses in SQL, shared by every server process (spec 10), each with the
fingerprint of the request it answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from cedros_pay.core.models import StoredResponse
from cedros_pay.storage.sql.base import SqlRepo, meta_out


class SqlIdempotency(SqlRepo):
    async def save(self, tenant: str, key: str, response: StoredResponse) -> None:
        t = self._t.idempotency_keys
        row: dict[str, Any] = {
            "tenant_id": tenant, "key": key, "status_code": response.status,
            "headers": response.headers, "body": response.body,
            "created_at": response.created_at, "expires_at": response.expires_at,
            "fingerprint": response.fingerprint,
        }
        stmt = self._insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant_id, t.c.key],
            set_={c: stmt.excluded[c] for c in ("status_code", "headers", "body",
                                                  "created_at", "expires_at", "fingerprint")},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, row)

    async def get(self, tenant: str, key: str, now: datetime) -> StoredResponse | None:
        t = self._t.idempotency_keys
        q = select(t).where(t.c.tenant_id == tenant, t.c.key == key, t.c.expires_at > now)
        async with self._engine.connect() as conn:
            r = (await conn.execute(q)).first()
        if r is None:
            return None
        return StoredResponse(status=r.status_code, headers=meta_out(r.headers),
                              body=bytes(r.body), created_at=r.created_at,
                              expires_at=r.expires_at, fingerprint=r.fingerprint)

    async def delete(self, tenant: str, key: str) -> None:
        t = self._t.idempotency_keys
        async with self._engine.begin() as conn:
            await conn.execute(delete(t).where(t.c.tenant_id == tenant, t.c.key == key))

    async def delete_expired(self, now: datetime) -> int:
        t = self._t.idempotency_keys
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(t).where(t.c.expires_at <= now))).rowcount
