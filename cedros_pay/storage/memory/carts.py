"""Cart quotes in memory (tests and the `memory` backend).

Memory repositories never await between a check and a write, so each method is atomic on
the event loop; records are copied in and out so callers cannot mutate stored state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cedros_pay.core.models import CartQuote


@dataclass(frozen=True, slots=True)
class PaidState:
    """What `mark_paid` changed on one cart, so a unit of work can put it back."""

    cart_id: str
    wallet_paid_by: str | None
    claim: tuple[str, datetime] | None


class MemoryCartQuotes:
    def __init__(self) -> None:
        self._rows: dict[str, CartQuote] = {}
        self._claims: dict[str, tuple[str, datetime]] = {}  # cart id -> (holder, until)

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
        self._claims.pop(cart_id, None)
        return True

    def paid_state(self, cart_id: str) -> PaidState:
        q = self._rows.get(cart_id)
        return PaidState(cart_id, q.wallet_paid_by if q else None, self._claims.get(cart_id))

    async def restore(self, state: PaidState) -> None:
        """Undo a `mark_paid` (unit-of-work rollback)."""
        if (q := self._rows.get(state.cart_id)) is not None:
            q.wallet_paid_by = state.wallet_paid_by
        if state.claim is not None:
            self._claims[state.cart_id] = state.claim

    async def claim(self, tenant: str, cart_id: str, holder: str, now: datetime,
                    lease: timedelta) -> bool:
        if not holder:
            raise ValueError("a cart claim needs a holder")
        q = self._rows.get(cart_id)
        if q is None or q.tenant_id != tenant or q.wallet_paid_by:
            return False
        held = self._claims.get(cart_id)
        if held is not None and held[0] != holder and held[1] > now:
            return False
        self._claims[cart_id] = (holder, now + lease)
        return True

    async def release_claim(self, tenant: str, cart_id: str, holder: str) -> bool:
        q = self._rows.get(cart_id)
        held = self._claims.get(cart_id)
        if q is None or q.tenant_id != tenant or held is None or held[0] != holder:
            return False
        del self._claims[cart_id]
        return True

    async def has_access(self, tenant: str, cart_id: str, wallet: str) -> bool:
        q = self._rows.get(cart_id)
        return q is not None and q.tenant_id == tenant and q.wallet_paid_by == wallet

    async def delete_expired(self, before: datetime) -> int:
        def held(cart_id: str) -> bool:
            claim = self._claims.get(cart_id)
            return claim is not None and claim[1] >= before

        gone = [k for k, q in self._rows.items()
                if q.expires_at < before and not q.is_paid and not held(k)]
        for k in gone:
            del self._rows[k]
            self._claims.pop(k, None)
        return len(gone)
