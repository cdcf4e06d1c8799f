"""Who may cancel or reactivate a subscription (spec 03 takes only a `subscriptionId`).

An x402 subscription's id is no secret: it is derived from the first payment's public
transaction signature (`payment_subscription_id`), and `x402/activate` answers it for any
wallet address. So for an x402 subscription the request must carry a proof, in headers:

- the subscribed wallet's Ed25519 signature (`X-Signer` = the wallet, `X-Signature`,
  `X-Message`) over `<action>:<subscriptionId>:<unix seconds>`, within ACCESS_PROOF_TTL
  of the server's clock, where the action names exactly what is asked:
  `cancel-subscription` (at the period end), `cancel-subscription-now`,
  `reactivate-subscription`; a signed free pass (`subscription:<resource>:<t>`) or a
  signature for another subscription or action does not do;
- or admin credentials, as every admin surface takes them (`Authorization: Bearer
  <admin key>`, or `X-Message: admin:<nonce>` signed by an admin signer).

A Stripe-billed subscription is addressed by Stripe's own `sub_…` id, which nothing in
this API hands to a stranger: knowing it is the capability, as with Stripe itself, and
its lifecycle calls stay as spec 03 has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Subscription
from cedros_pay.resolvers.admin_auth import AdminAuth, SignedHeaders, verify_ed25519
from cedros_pay.resolvers.subscription_events import X402, public_id, rail_of

ACCESS_PROOF_TTL = 300  # seconds a signed subscriber message stays good (either side)
CANCEL_AT_PERIOD_END = "cancel-subscription"
CANCEL_NOW = "cancel-subscription-now"
REACTIVATE = "reactivate-subscription"


@dataclass(frozen=True, slots=True)
class LifecycleProof:
    """The credentials a cancel or reactivate request carried, as received."""

    authorization: str | None = None
    signed: SignedHeaders = field(default_factory=SignedHeaders)

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> LifecycleProof:
        """From request headers (or GraphQL credentials), keyed in lower case."""
        return cls(headers.get("authorization"), SignedHeaders(
            signer=headers.get("x-signer"), signature=headers.get("x-signature"),
            message=headers.get("x-message")))


def _refused(message: str, code: ErrorCode = ErrorCode.UNAUTHORIZED) -> CedrosError:
    return CedrosError(code, message, {"field": "X-Message"})


class LifecycleGuard:
    def __init__(self, admin: AdminAuth | None, clock: Clock) -> None:
        self._admin = admin
        self._clock = clock

    async def authorize(self, tenant: str, sub: Subscription, action: str,
                        proof: LifecycleProof) -> None:
        """Return if `proof` allows `action` on `sub`, else raise 401 (no or bad proof) or
        403 (a valid signature by a wallet that is not the subscriber's)."""
        if rail_of(sub) != X402:
            return
        s = proof.signed
        message = (s.message or "").strip()
        if s.signer and s.signature and message and not message.startswith("admin:"):
            self._check_subscriber(sub, action, s.signer.strip(), s.signature, message)
            return
        if proof.authorization or message:
            if self._admin is None:
                raise CedrosError(ErrorCode.FORBIDDEN,
                                  "admin access is not configured on this server")
            await self._admin.authenticate(tenant, proof.authorization, s)
            return
        raise _refused(f"an x402 subscription needs its wallet's signature: X-Signer, "
                       f"X-Signature and X-Message = {action}:{public_id(sub)}:<unix seconds> "
                       f"(or admin credentials)")

    def _check_subscriber(self, sub: Subscription, action: str, signer: str, signature: str,
                          message: str) -> None:
        prefix = f"{action}:{public_id(sub)}:"
        stamp = message[len(prefix):] if message.startswith(prefix) else ""
        if not stamp.isdigit() or len(stamp) > 12:
            raise _refused(f"X-Message must be {prefix}<unix seconds> for this request")
        if abs(self._clock.now().timestamp() - int(stamp)) > ACCESS_PROOF_TTL:
            raise _refused(f"the signed message's time is more than {ACCESS_PROOF_TTL} s "
                           f"from the server's; sign a fresh one")
        if not verify_ed25519(signer, signature, message):
            raise _refused("the signature does not verify")
        if signer != sub.wallet:
            raise _refused("only the subscribed wallet may do this", ErrorCode.FORBIDDEN)
