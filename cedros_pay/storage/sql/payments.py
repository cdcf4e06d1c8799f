"""Payment ledger in SQL: the replay-protection primary key (spec 13)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from cedros_pay.core.models import PaymentTransaction
from cedros_pay.storage.sql.base import SqlRepo, meta_out


class _Conflict(Exception):
    """Raised inside a transaction to roll a partly-inserted batch back."""


class SqlPayments(SqlRepo):
    @staticmethod
    def _row(tx: PaymentTransaction) -> dict[str, Any]:
        return {
            "signature": tx.signature, "tenant_id": tx.tenant_id, "resource_id": tx.resource_id,
            "wallet": tx.wallet, "amount": tx.amount_atomic, "amount_asset": tx.asset,
            "created_at": tx.created_at, "metadata": tx.metadata,
        }

    @staticmethod
    def _model(r: Any) -> PaymentTransaction:
        return PaymentTransaction(
            signature=r.signature, tenant_id=r.tenant_id, resource_id=r.resource_id,
            wallet=r.wallet, amount_atomic=r.amount, asset=r.amount_asset,
            created_at=r.created_at, metadata=meta_out(r.metadata),
        )

    def _insert_once(self) -> Any:
        t = self._t.payments
        return self._insert(t).on_conflict_do_nothing(index_elements=[t.c.signature])

    async def record(self, tx: PaymentTransaction) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(self._insert_once(), self._row(tx))
            return result.rowcount == 1

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        if len({tx.signature for tx in txs}) != len(txs):
            return False
        try:
            async with self._engine.begin() as conn:
                for tx in txs:
                    if (await conn.execute(self._insert_once(), self._row(tx))).rowcount != 1:
                        raise _Conflict
        except _Conflict:
            return False
        return True

    async def has_been_processed(self, signature: str) -> bool:
        t = self._t.payments
        q = select(t.c.signature).where(t.c.signature == signature)
        async with self._engine.connect() as conn:
            return (await conn.execute(q)).first() is not None

    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None:
        t = self._t.payments
        q = select(t).where(t.c.tenant_id == tenant, t.c.signature == signature)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return self._model(row) if row else None

    async def archive_older_than(self, before: datetime) -> int:
        t = self._t.payments
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(t).where(t.c.created_at < before))).rowcount
