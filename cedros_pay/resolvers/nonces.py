"""Admin nonces: single-use, purpose-bound, five minutes (spec 04, spec 13)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.ids import new_nonce_id
from cedros_pay.core.models import AdminNonce, NonceOutcome
from cedros_pay.storage.repos import NonceRepo

NONCE_TTL = timedelta(minutes=5)  # hard-coded in the reference (spec 09 note)

# The X-Message action names (DESIGN §7) are the same purposes as spec 04's.
PURPOSE_ALIASES = {
    "list-pending-refunds": "refund_list",
    "approve-refund": "refund_approve",
    "deny-refund": "refund_deny",
}
PURPOSES = frozenset({"", "refund_list", "refund_approve", "refund_deny", "refund_request",
                      "admin"})

_REFUSALS = {
    NonceOutcome.NOT_FOUND: "nonce not found",
    NonceOutcome.EXPIRED: "nonce expired",
    NonceOutcome.ALREADY_USED: "nonce already used",
    NonceOutcome.WRONG_PURPOSE: "nonce was issued for another operation",
}


def canonical_purpose(purpose: str) -> str:
    p = PURPOSE_ALIASES.get(purpose.strip(), purpose.strip())
    if p not in PURPOSES:
        raise CedrosError(ErrorCode.INVALID_FIELD, f"unknown nonce purpose {purpose!r}",
                          {"field": "purpose", "allowed": sorted(PURPOSES - {""})})
    return p


@dataclass(frozen=True, slots=True)
class IssuedNonce:
    nonce: AdminNonce

    @property
    def expires_at_unix(self) -> int:
        return int(self.nonce.expires_at.timestamp())


class Nonces:
    def __init__(self, nonces: NonceRepo, clock: Clock) -> None:
        self._nonces = nonces
        self._clock = clock

    async def create(self, tenant: str, purpose: str = "") -> IssuedNonce:
        """Issue a nonce; an empty purpose is the spec's backwards-compatible wildcard."""
        now = self._clock.now()
        nonce = AdminNonce(id=new_nonce_id(), tenant_id=tenant, purpose=canonical_purpose(purpose),
                           created_at=now, expires_at=now + NONCE_TTL)
        await self._nonces.create(nonce)
        return IssuedNonce(nonce)

    async def consume(self, tenant: str, nonce_id: str, purpose: str) -> None:
        """Use a nonce once for `purpose`, or raise `unauthorized` saying why."""
        outcome = await self._nonces.consume(tenant, nonce_id, canonical_purpose(purpose),
                                             self._clock.now())
        if outcome is not NonceOutcome.CONSUMED:
            raise CedrosError(ErrorCode.UNAUTHORIZED, _REFUSALS[outcome],
                              {"reason": outcome.value})
