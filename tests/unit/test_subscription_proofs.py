"""Who may cancel or reactivate a subscription (resolvers/subscription_proofs.py): for an
x402 one the subscribed wallet's signature over the exact action, id and a fresh time, or
an admin; never a stranger who merely knows the (derivable) id."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import Subscription, SubscriptionStatus
from cedros_pay.resolvers.admin_auth import AdminAuth, SignedHeaders
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.subscription_proofs import (
    ACCESS_PROOF_TTL,
    CANCEL_AT_PERIOD_END,
    CANCEL_NOW,
    REACTIVATE,
    LifecycleGuard,
    LifecycleProof,
)
from cedros_pay.storage.store import memory_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PAYER, ADMIN, STRANGER = Keypair(), Keypair(), Keypair()
SUB_ID = "6f1c3c52-5e0b-5d0e-9a43-1f6a0b8d2c11"
ADMIN_KEY = "admin-key-for-the-guard-test"


def subscription(**kw: object) -> Subscription:
    base: dict[str, object] = dict(
        id=SUB_ID, tenant_id="default", product_id="plan", wallet=str(PAYER.pubkey()),
        status=SubscriptionStatus.ACTIVE, current_period_start=NOW,
        current_period_end=NOW + timedelta(days=30), created_at=NOW, updated_at=NOW)
    return Subscription(**{**base, **kw})  # type: ignore[arg-type]


def signed(key: Keypair, message: str, signer: Keypair | None = None) -> LifecycleProof:
    signature = base64.b64encode(bytes(key.sign_message(message.encode()))).decode()
    return LifecycleProof(signed=SignedHeaders(str((signer or key).pubkey()), signature,
                                               message))


def stamp(offset: int = 0) -> int:
    return int(NOW.timestamp()) + offset


@pytest.fixture
def guard() -> tuple[LifecycleGuard, Nonces]:
    clock = ManualClock(NOW)
    nonces = Nonces(memory_store().nonces, clock)
    auth = AdminAuth(api_keys=[ADMIN_KEY], signers=[str(ADMIN.pubkey())], nonces=nonces)
    return LifecycleGuard(auth, clock), nonces


@pytest.mark.parametrize("action", [CANCEL_AT_PERIOD_END, CANCEL_NOW, REACTIVATE])
async def test_the_subscriber_signs_the_exact_action(
        guard: tuple[LifecycleGuard, Nonces], action: str) -> None:
    g, _ = guard
    for offset in (0, -ACCESS_PROOF_TTL, ACCESS_PROOF_TTL):
        await g.authorize("default", subscription(), action,
                          signed(PAYER, f"{action}:{SUB_ID}:{stamp(offset)}"))


@pytest.mark.parametrize(("proof", "code"), [
    (LifecycleProof(), ErrorCode.UNAUTHORIZED),  # knowing the id is not enough
    (signed(STRANGER, f"cancel-subscription:{SUB_ID}:{stamp()}"), ErrorCode.FORBIDDEN),
    # the subscriber's address with someone else's signature
    (signed(STRANGER, f"cancel-subscription:{SUB_ID}:{stamp()}", signer=PAYER),
     ErrorCode.UNAUTHORIZED),
    # a signed "at period end" does not cancel now; a free pass cancels nothing
    (signed(PAYER, f"cancel-subscription-now:{SUB_ID}:{stamp()}"), ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"subscription:plan:{stamp()}"), ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:someone-elses-id:{stamp()}"), ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:{SUB_ID}:{stamp(-ACCESS_PROOF_TTL - 1)}"),
     ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:{SUB_ID}:{stamp(ACCESS_PROOF_TTL + 1)}"),
     ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:{SUB_ID}:9" + "9" * 40), ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:{SUB_ID}:-5"), ErrorCode.UNAUTHORIZED),
    (signed(PAYER, f"cancel-subscription:{SUB_ID}"), ErrorCode.UNAUTHORIZED),
    (LifecycleProof(signed=SignedHeaders(str(PAYER.pubkey()), "not base64!",
                                         f"cancel-subscription:{SUB_ID}:{stamp()}")),
     ErrorCode.UNAUTHORIZED),
    (LifecycleProof(signed=SignedHeaders("not-a-key", "AAAA",
                                         f"cancel-subscription:{SUB_ID}:{stamp()}")),
     ErrorCode.UNAUTHORIZED),
    (LifecycleProof("Bearer not-the-admin-key"), ErrorCode.UNAUTHORIZED),
    (signed(STRANGER, "admin:0123456789abcdef0123456789abcdef"), ErrorCode.FORBIDDEN),
])
async def test_everything_else_is_refused(guard: tuple[LifecycleGuard, Nonces],
                                          proof: LifecycleProof, code: ErrorCode) -> None:
    g, _ = guard
    with pytest.raises(CedrosError) as refused:
        await g.authorize("default", subscription(), CANCEL_AT_PERIOD_END, proof)
    assert refused.value.code is code


async def test_an_admin_may_act_on_any_subscription(guard: tuple[LifecycleGuard, Nonces]
                                                    ) -> None:
    g, nonces = guard
    await g.authorize("default", subscription(), CANCEL_NOW,
                      LifecycleProof(f"Bearer {ADMIN_KEY}"))
    nonce = (await nonces.create("default", "admin")).nonce.id
    by_admin = signed(ADMIN, f"admin:{nonce}")
    await g.authorize("default", subscription(), REACTIVATE, by_admin)
    with pytest.raises(CedrosError) as replayed:  # the nonce was consumed
        await g.authorize("default", subscription(), REACTIVATE, by_admin)
    assert replayed.value.code is ErrorCode.UNAUTHORIZED


async def test_a_stripe_billed_subscription_is_addressed_by_stripes_id(
        guard: tuple[LifecycleGuard, Nonces]) -> None:
    g, _ = guard
    card = subscription(wallet="", stripe_subscription_id="sub_1NQh8u2eZvKYlo2C",
                        stripe_customer_id="cus_9s6XKzkNRiz8i3")
    await g.authorize("default", card, CANCEL_NOW, LifecycleProof())


async def test_without_admin_auth_only_the_subscriber_can_act() -> None:
    g = LifecycleGuard(None, ManualClock(NOW))
    await g.authorize("default", subscription(), CANCEL_NOW,
                      signed(PAYER, f"cancel-subscription-now:{SUB_ID}:{stamp()}"))
    with pytest.raises(CedrosError) as refused:
        await g.authorize("default", subscription(), CANCEL_NOW, LifecycleProof("Bearer x"))
    assert refused.value.code is ErrorCode.FORBIDDEN
