"""Products in SQL (spec 23)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from cedros_pay.core.models import Product, SubscriptionConfig
from cedros_pay.storage.repos import AlreadyExists, NotFound
from cedros_pay.storage.sql.base import SqlRepo, meta_out

_COLUMNS = ("description", "fiat_amount", "fiat_currency", "stripe_price_id", "crypto_amount",
            "crypto_token", "crypto_account", "memo_template", "metadata", "active",
            "subscription_config", "updated_at")


def _row(p: Product) -> dict[str, Any]:
    return {
        "id": p.id, "tenant_id": p.tenant_id, "description": p.description,
        "fiat_amount": p.fiat_amount, "fiat_currency": p.fiat_currency,
        "stripe_price_id": p.stripe_price_id or None, "crypto_amount": p.crypto_amount,
        "crypto_token": p.crypto_token, "crypto_account": p.crypto_account,
        "memo_template": p.memo_template, "metadata": p.metadata, "active": p.active,
        "subscription_config": asdict(p.subscription) if p.subscription else None,
        "created_at": p.created_at, "updated_at": p.updated_at,
    }


def _model(r: Any) -> Product:
    sub = r.subscription_config
    return Product(
        id=r.id, tenant_id=r.tenant_id, description=r.description or "",
        fiat_amount=r.fiat_amount, fiat_currency=r.fiat_currency or "",
        stripe_price_id=r.stripe_price_id or "", crypto_amount=r.crypto_amount,
        crypto_token=r.crypto_token or "", crypto_account=r.crypto_account or "",
        memo_template=r.memo_template or "", metadata=meta_out(r.metadata), active=r.active,
        subscription=SubscriptionConfig(**sub) if sub else None,
        created_at=r.created_at, updated_at=r.updated_at,
    )


class SqlProducts(SqlRepo):
    async def _first(self, *where: Any) -> Product | None:
        t = self._t.products
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t).where(*where).limit(1))).first()
        return _model(row) if row else None

    async def get(self, tenant: str, product_id: str) -> Product | None:
        t = self._t.products
        return await self._first(t.c.tenant_id == tenant, t.c.id == product_id)

    async def get_by_stripe_price_id(self, tenant: str, price_id: str) -> Product | None:
        t = self._t.products
        return await self._first(t.c.tenant_id == tenant, t.c.stripe_price_id == price_id)

    async def list(self, tenant: str, include_inactive: bool = False) -> list[Product]:
        t = self._t.products
        q = select(t).where(t.c.tenant_id == tenant)
        if not include_inactive:
            q = q.where(t.c.active.is_(True))
        async with self._engine.connect() as conn:
            return [_model(r) for r in await conn.execute(q.order_by(t.c.id))]

    async def create(self, product: Product) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(self._t.products).values(**_row(product)))
        except IntegrityError as exc:
            raise AlreadyExists(f"product {product.id!r} exists") from exc

    async def update(self, product: Product) -> None:
        t = self._t.products
        row = _row(product)
        stmt = (update(t).where(t.c.tenant_id == product.tenant_id, t.c.id == product.id)
                .values({c: row[c] for c in _COLUMNS}))
        async with self._engine.begin() as conn:
            if (await conn.execute(stmt)).rowcount != 1:
                raise NotFound(f"product {product.id!r} not found")

    async def delete(self, tenant: str, product_id: str) -> bool:
        t = self._t.products
        stmt = update(t).where(t.c.tenant_id == tenant, t.c.id == product_id).values(active=False)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1
