"""Signed requests (DESIGN §7) and refund amounts from decimal text (issue 14)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from solders.keypair import Keypair

from cedros_pay.core.assets import USDC
from cedros_pay.core.clock import ManualClock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.resolvers.admin_auth import AdminAuth, decode_signature
from cedros_pay.resolvers.admin_auth import verify_ed25519 as verifies
from cedros_pay.resolvers.nonces import Nonces
from cedros_pay.resolvers.refunds import atomic_amount
from cedros_pay.resolvers.signed_requests import SignedRequest, SignedRequests
from cedros_pay.storage.memory.nonces import MemoryNonces

MERCHANT = Keypair()
ADMIN = Keypair()


def b64(key: Keypair, message: str) -> str:
    return base64.b64encode(bytes(key.sign_message(message.encode()))).decode()


def headers(key: Keypair, message: str, **kw: str) -> SignedRequest:
    return SignedRequest(signer=str(key.pubkey()), signature=b64(key, message),
                         message=message, **kw)


@pytest.fixture
def parts() -> tuple[SignedRequests, Nonces, ManualClock]:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    nonces = Nonces(MemoryNonces(), clock)
    auth = AdminAuth(api_keys=[], signers=[str(MERCHANT.pubkey()), str(ADMIN.pubkey())],
                     nonces=nonces)
    return SignedRequests(auth, nonces, str(MERCHANT.pubkey())), nonces, clock


def test_signatures_decode_from_base64_and_base58_only_at_64_bytes() -> None:
    sig = MERCHANT.sign_message(b"m")
    assert decode_signature(base64.b64encode(bytes(sig)).decode()) == bytes(sig)
    assert decode_signature(str(sig)) == bytes(sig)
    for bad in ("", "!!", base64.b64encode(bytes(63)).decode(), "A" * 500, "0OIl"):
        assert decode_signature(bad) is None


def test_verification_is_over_the_exact_message_bytes() -> None:
    key = str(MERCHANT.pubkey())
    assert verifies(key, b64(MERCHANT, "approve-refund:r"), "approve-refund:r")
    assert not verifies(key, b64(MERCHANT, "approve-refund:r"), "approve-refund:r ")
    assert not verifies(str(ADMIN.pubkey()), b64(MERCHANT, "x"), "x")
    assert not verifies("not-a-key", b64(MERCHANT, "x"), "x")


def test_the_payer_form_needs_its_action_and_value() -> None:
    req = headers(ADMIN, "request-refund:sig1")
    assert SignedRequests.signed_by(req, "request-refund", "sig1") == str(ADMIN.pubkey())
    with pytest.raises(CedrosError) as err:
        SignedRequests.signed_by(req, "request-refund", "sig2")
    assert err.value.code is ErrorCode.INVALID_SIGNATURE
    with pytest.raises(CedrosError) as err:
        SignedRequests.signed_by(SignedRequest(), "request-refund", "sig1")
    assert err.value.code is ErrorCode.UNAUTHORIZED


async def test_an_admin_nonce_is_used_once_and_only_after_the_signature(
        parts: tuple[SignedRequests, Nonces, ManualClock]) -> None:
    signed, nonces, _clock = parts
    nonce = (await nonces.create("default", "refund_list")).nonce.id
    forged = SignedRequest(signer=str(ADMIN.pubkey()), signature=b64(MERCHANT, "other"),
                           message=f"list-pending-refunds:{nonce}")
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", forged, action="list-pending-refunds", value=None,
                           purpose="refund_list")
    assert err.value.code is ErrorCode.INVALID_SIGNATURE
    stranger = headers(Keypair(), f"list-pending-refunds:{nonce}")
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", stranger, action="list-pending-refunds", value=None,
                           purpose="refund_list")
    assert err.value.code is ErrorCode.UNAUTHORIZED_REFUND_ISSUER
    ok = headers(ADMIN, f"list-pending-refunds:{nonce}", nonce=nonce)
    assert await signed.admin("default", ok, action="list-pending-refunds", value=None,
                              purpose="refund_list") == str(ADMIN.pubkey())
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", ok, action="list-pending-refunds", value=None,
                           purpose="refund_list")
    assert err.value.details["reason"] == "already_used"


async def test_an_expired_or_mismatched_nonce_is_refused(
        parts: tuple[SignedRequests, Nonces, ManualClock]) -> None:
    signed, nonces, clock = parts
    nonce = (await nonces.create("default", "refund_list")).nonce.id
    other = (await nonces.create("default", "refund_list")).nonce.id
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", headers(ADMIN, f"list-pending-refunds:{nonce}",
                                               nonce=other),
                           action="list-pending-refunds", value=None, purpose="refund_list")
    assert err.value.code is ErrorCode.INVALID_SIGNATURE
    clock.advance(timedelta(minutes=6))
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", headers(ADMIN, f"list-pending-refunds:{nonce}"),
                           action="list-pending-refunds", value=None, purpose="refund_list")
    assert err.value.details["reason"] == "expired"


async def test_the_body_form_is_signed_by_the_merchant_unless_a_signer_is_named(
        parts: tuple[SignedRequests, Nonces, ManualClock]) -> None:
    signed, nonces, _clock = parts
    nonce = (await nonces.create("default", "refund_deny")).nonce.id
    by_admin = SignedRequest(nonce=nonce, body_signature=b64(ADMIN, nonce))
    with pytest.raises(CedrosError) as err:  # checked against the merchant's key
        await signed.admin("default", by_admin, action="deny-refund", value="r",
                           purpose="refund_deny")
    assert err.value.code is ErrorCode.INVALID_SIGNATURE
    named = SignedRequest(signer=str(ADMIN.pubkey()), nonce=nonce,
                          body_signature=str(ADMIN.sign_message(nonce.encode())))
    assert await signed.admin("default", named, action="deny-refund", value="r",
                              purpose="refund_deny") == str(ADMIN.pubkey())
    merchant = SignedRequest(nonce=nonce, body_signature=b64(MERCHANT, nonce))
    with pytest.raises(CedrosError) as err:  # the nonce is spent
        await signed.admin("default", merchant, action="deny-refund", value="r",
                           purpose="refund_deny")
    assert err.value.details["reason"] == "already_used"


async def test_header_form_for_an_id_must_name_that_id(
        parts: tuple[SignedRequests, Nonces, ManualClock]) -> None:
    signed, _nonces, _clock = parts
    with pytest.raises(CedrosError) as err:
        await signed.admin("default", headers(MERCHANT, "approve-refund:refund_b"),
                           action="approve-refund", value="refund_a", purpose="refund_approve")
    assert err.value.code is ErrorCode.INVALID_SIGNATURE
    assert await signed.admin("default", headers(MERCHANT, "approve-refund:refund_a"),
                              action="approve-refund", value="refund_a",
                              purpose="refund_approve") == str(MERCHANT.pubkey())


@pytest.mark.parametrize(("text", "atomic"), [
    ("0.89", 890_000), ("1e-6", 1), ("1E-6", 1), ("1.5", 1_500_000), ("10", 10_000_000),
    ("0.000001", 1), ("1.230000", 1_230_000),
])
def test_refund_amounts_come_from_their_decimal_text(text: str, atomic: int) -> None:
    assert atomic_amount(text, USDC) == atomic
    assert atomic_amount(json.loads(text, parse_float=Decimal), USDC) == atomic


def test_decimal_sums_are_exact_and_binary_floats_are_not_rounded_up() -> None:
    assert atomic_amount(Decimal("0.1") + Decimal("0.2"), USDC) == 300_000
    # 0.1 + 0.2 as a binary float is 0.30000000000000004: finer than a micro-USDC.
    as_float_text = json.loads(json.dumps(0.1 + 0.2), parse_float=Decimal)
    with pytest.raises(CedrosError) as err:
        atomic_amount(as_float_text, USDC)
    assert err.value.code is ErrorCode.INVALID_AMOUNT


@pytest.mark.parametrize("bad", ["", "abc", "1e-7", "0", "-1", "NaN", "Infinity", "1e999",
                                 "0.0000001", True])
def test_bad_refund_amounts_are_invalid_amount(bad: object) -> None:
    with pytest.raises(CedrosError) as err:
        atomic_amount(bad, USDC)  # type: ignore[arg-type]
    assert err.value.code is ErrorCode.INVALID_AMOUNT
