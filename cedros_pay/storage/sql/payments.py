"""Payment ledger in SQL: the replay-protection primary key (spec 13)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, and_, bindparam, delete, exists, func, insert, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import BindParameter

from cedros_pay.core.models import (
    STRIPE_SIGNATURE_PREFIX,
    AssetTotal,
    PaymentFilter,
    PaymentTransaction,
)
from cedros_pay.storage.sql.base import Connectable, SqlConnection, SqlRepo, meta_out
from cedros_pay.storage.sql.schema import Tables


class _Conflict(Exception):
    """Raised inside a transaction to roll a partly-inserted batch back."""


@dataclass(frozen=True, slots=True)
class PaymentStatements:
    """The settlement path's statements, built once per store and run with bound values:
    a reused statement skips SQLAlchemy's construction and cache-key work on every call
    (bench/RESULTS.md, "Lean RPC transport")."""

    processed: Any  # SELECT: :signature in the ledger or its archive
    insert_once: Any  # INSERT ... ON CONFLICT (signature) DO NOTHING
    archived: Any  # SELECT: :signature in the archive

    @classmethod
    def build(cls, tables: Tables, dialect: Dialect) -> PaymentStatements:
        t, a = tables.payments, tables.payments_archive
        signature: BindParameter[str] = bindparam("signature")
        dml = postgresql if dialect.name == "postgresql" else sqlite
        return cls(
            processed=select(t.c.signature).where(t.c.signature == signature).union_all(
                select(a.c.signature).where(a.c.signature == signature)),
            insert_once=dml.insert(t).on_conflict_do_nothing(index_elements=[t.c.signature]),
            archived=select(a.c.signature).where(a.c.signature == signature).limit(1))


class SqlPayments(SqlRepo):
    def __init__(self, engine: Connectable, tables: Tables,
                 statements: PaymentStatements | None = None) -> None:
        super().__init__(engine, tables)
        self._q = statements or PaymentStatements.build(tables, engine.dialect)

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

    async def _archived(self, conn: SqlConnection, signatures: Sequence[str]) -> bool:
        """Checked after the insert, in its transaction: an archival that committed while
        the insert waited on the row it moved is visible to this later statement."""
        if len(signatures) == 1:
            found = await conn.execute(self._q.archived, {"signature": signatures[0]})
        else:
            a = self._t.payments_archive
            found = await conn.execute(
                select(a.c.signature).where(a.c.signature.in_(list(signatures))).limit(1))
        return found.first() is not None

    async def record(self, tx: PaymentTransaction) -> bool:
        try:
            async with self._engine.begin() as conn:
                if (await conn.execute(self._q.insert_once, self._row(tx))).rowcount != 1:
                    return False
                if await self._archived(conn, [tx.signature]):
                    raise _Conflict
        except _Conflict:
            return False
        return True

    async def record_many(self, txs: Sequence[PaymentTransaction]) -> bool:
        if len({tx.signature for tx in txs}) != len(txs):
            return False
        try:
            async with self._engine.begin() as conn:
                for tx in txs:
                    if (await conn.execute(self._q.insert_once, self._row(tx))).rowcount != 1:
                        raise _Conflict
                if await self._archived(conn, [tx.signature for tx in txs]):
                    raise _Conflict
        except _Conflict:
            return False
        return True

    async def has_been_processed(self, signature: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.execute(self._q.processed, {"signature": signature})
            return found.first() is not None

    async def get(self, tenant: str, signature: str) -> PaymentTransaction | None:
        t = self._t.payments
        q = select(t).where(t.c.tenant_id == tenant, t.c.signature == signature)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return self._model(row) if row else None

    def _where(self, tenant: str, where: PaymentFilter) -> list[Any]:
        t = self._t.payments
        conds: list[Any] = [t.c.tenant_id == tenant]
        if where.resource_id is not None:
            conds.append(t.c.resource_id == where.resource_id)
        if where.wallet is not None:
            conds.append(t.c.wallet == where.wallet)
        if where.method == "stripe":
            conds.append(t.c.signature.startswith(STRIPE_SIGNATURE_PREFIX, autoescape=True))
        elif where.method == "x402":
            conds.append(~t.c.signature.startswith(STRIPE_SIGNATURE_PREFIX, autoescape=True))
        if where.since is not None:
            conds.append(t.c.created_at >= where.since)
        if where.until is not None:
            conds.append(t.c.created_at < where.until)
        return conds

    async def page(
        self, tenant: str, where: PaymentFilter, limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> list[PaymentTransaction]:
        t = self._t.payments
        conds = self._where(tenant, where)
        if after is not None:
            at, sig = after
            conds.append(or_(t.c.created_at < at, and_(t.c.created_at == at,
                                                        t.c.signature < sig)))
        q = (select(t).where(*conds).order_by(t.c.created_at.desc(), t.c.signature.desc())
             .limit(limit))
        async with self._engine.connect() as conn:
            return [self._model(r) for r in await conn.execute(q)]

    async def totals(self, tenant: str, where: PaymentFilter) -> list[AssetTotal]:
        t = self._t.payments
        q = (select(t.c.amount_asset, func.count(), func.sum(t.c.amount))
             .where(*self._where(tenant, where)).group_by(t.c.amount_asset)
             .order_by(t.c.amount_asset))
        async with self._engine.connect() as conn:
            return [AssetTotal(asset, int(n), int(total or 0))
                    for asset, n, total in await conn.execute(q)]

    async def archive_older_than(self, before: datetime) -> int:
        """Move (copy, then delete, in one transaction) rows older than `before`.

        Only rows the copy reached are deleted. Under PostgreSQL's READ COMMITTED each
        statement reads its own snapshot, so a payment committed between the two would
        otherwise be deleted uncopied, and its signature could pay again."""
        t, a = self._t.payments, self._t.payments_archive
        cols = ["signature", "tenant_id", "resource_id", "wallet", "amount", "amount_asset",
                "created_at", "metadata"]
        old = t.c.created_at < before
        copy = insert(a).from_select(
            [*cols, "archived_at"],
            select(*(t.c[c] for c in cols), literal(datetime.now(UTC), a.c.archived_at.type))
            .where(old))
        async with self._engine.begin() as conn:
            await conn.execute(copy)
            copied = exists().where(a.c.signature == t.c.signature)
            return (await conn.execute(delete(t).where(old, copied))).rowcount
