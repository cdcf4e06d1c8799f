"""ID formats of spec 16 ("ID Format Summary", "ID Validation") and spec 17 format checks."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import base58
import pytest

from cedros_pay.core import ids

HEX = re.compile(r"[0-9a-f]+")


@pytest.mark.parametrize(
    ("make", "prefix", "length", "check"),
    [
        (ids.new_cart_id, "cart_", 37, ids.is_cart_id),
        (ids.new_refund_id, "refund_", 39, ids.is_refund_id),
        (ids.new_event_id, "evt_", 28, ids.is_event_id),
        (ids.new_nonce_id, "", 32, ids.is_nonce_id),
        (ids.new_request_id, "req_", 36, ids.is_request_id),
    ],
)
def test_hex_ids_have_spec16_prefix_and_length(
    make: Callable[[], str], prefix: str, length: int, check: Callable[[str], bool]
) -> None:
    value = make()
    assert value.startswith(prefix)
    assert len(value) == length
    assert HEX.fullmatch(value[len(prefix) :])
    assert check(value)


@pytest.mark.parametrize(
    "make",
    [
        ids.new_cart_id,
        ids.new_refund_id,
        ids.new_event_id,
        ids.new_nonce_id,
        ids.new_request_id,
        ids.new_memo_nonce,
        ids.new_subscription_id,
    ],
)
def test_random_ids_do_not_repeat(make: Callable[[], str]) -> None:
    assert len({make() for _ in range(500)}) == 500


def test_subscription_id_is_a_uuid_v4() -> None:
    value = ids.new_subscription_id()
    assert len(value) == 36
    assert ids.is_subscription_id(value)
    assert ids.is_subscription_id("550e8400-e29b-41d4-a716-446655440000")  # spec 16 example
    assert not ids.is_subscription_id("550e8400-e29b-11d4-a716-446655440000")  # v1


def test_memo_nonce_is_8_base64url_chars() -> None:
    for _ in range(200):
        value = ids.new_memo_nonce()
        assert len(value) == 8
        assert re.fullmatch(r"[A-Za-z0-9_-]{8}", value)
        assert ids.is_memo_nonce(value)
    assert ids.is_memo_nonce("aBc1DeFg")  # spec 16 example


def test_webhook_id_is_prefix_and_unix_nanoseconds() -> None:
    when = datetime(2023, 12, 1, 12, 2, 36, 789123, tzinfo=UTC)
    assert ids.new_webhook_id(when) == "webhook_1701432156789123000"
    same_instant = when.astimezone(timezone(timedelta(hours=-5)))
    assert ids.new_webhook_id(same_instant) == "webhook_1701432156789123000"
    assert ids.is_webhook_id(ids.new_webhook_id())
    assert ids.is_webhook_id("webhook_1701432156789123456")  # spec 16 example
    assert 26 <= len(ids.new_webhook_id()) <= 28  # "~26 chars"


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (ids.is_cart_id, "cart_" + "a1b2c3d4e5f67890" * 2, True),
        (ids.is_cart_id, "cart_" + "a" * 31, False),
        (ids.is_cart_id, "cart_" + "a" * 33, False),
        (ids.is_cart_id, "cart_" + "g" * 32, False),
        (ids.is_cart_id, "cart_" + "A" * 32, False),
        (ids.is_cart_id, "cart:cart_" + "a" * 32, False),
        (ids.is_cart_id, "refund_" + "a" * 32, False),
        (ids.is_refund_id, "refund_" + "0" * 32, True),
        (ids.is_refund_id, "refund_" + "0" * 24, False),
        (ids.is_refund_id, "cart_" + "0" * 32, False),
        (ids.is_event_id, "evt_" + "f" * 24, True),
        (ids.is_event_id, "evt_" + "f" * 32, False),
        (ids.is_nonce_id, "a1b2c3d4e5f67890" * 2, True),
        (ids.is_nonce_id, "nonce_" + "a" * 32, False),
        (ids.is_request_id, "req_" + "9" * 32, True),
        (ids.is_request_id, "req_fallback", False),
        (ids.is_webhook_id, "webhook_abc", False),
        (ids.is_memo_nonce, "aBc1DeF=", False),
        (ids.is_memo_nonce, "aBc1DeFgH", False),
    ],
)
def test_id_validators(check: Callable[[str], bool], value: str, ok: bool) -> None:
    assert check(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("req_abc123", True),
        ("6b1f0c2e-8d0a-4c4e-9d1b-0f3c2a1b4d5e", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("tab\there", False),
        ("new\nline", False),
        ("caf\u00e9", False),
    ],
)
def test_incoming_request_id_must_be_short_visible_ascii(value: str, ok: bool) -> None:
    assert ids.is_sane_request_id(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("p", True), ("product-1", True), ("x" * 255, True), ("", False), ("x" * 256, False)],
)
def test_product_id_is_1_to_255_chars(value: str, ok: bool) -> None:
    assert ids.is_product_id(value) is ok


@pytest.mark.parametrize(
    "raw", [bytes(32), b"\x00\x01" + bytes(30), bytes(range(32)), b"\xff" * 32]
)
def test_b58decode_agrees_with_the_base58_package(raw: bytes) -> None:
    assert ids.b58decode(base58.b58encode(raw).decode()) == raw


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", True),  # USDC mint
        ("So11111111111111111111111111111111111111112", True),
        ("11111111111111111111111111111111", True),  # system program: 32 zero bytes
        ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wE", False),  # too short: 24 bytes
        ("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1vz", False),  # too long: 33 bytes
        ("0PjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", False),  # '0' is not base58
        ("", False),
        ("not a wallet", False),
    ],
)
def test_solana_address_is_base58_of_32_bytes(value: str, ok: bool) -> None:
    assert ids.is_solana_address(value) is ok


def test_solana_signature_is_base58_of_64_bytes() -> None:
    full = base58.b58encode(b"\x7f" * 64).decode()
    assert len(full) == 88
    assert ids.is_solana_signature(full)
    short = base58.b58encode(b"\x00" + b"\x01" * 63).decode()
    assert len(short) < 88
    assert ids.is_solana_signature(short)
    assert not ids.is_solana_signature(base58.b58encode(b"\x7f" * 32).decode())
    assert not ids.is_solana_signature("I" * 88)
    assert not ids.is_solana_signature(full + "1")


def test_memo_nonces_are_distinct() -> None:
    drawn = [ids.new_memo_nonce() for _ in range(5000)]
    assert len(set(drawn)) == len(drawn)


def test_request_ids_and_memo_nonces_are_drawn_from_secrets_each_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[int] = []

    def token_bytes(n: int) -> bytes:
        draws.append(n)
        return bytes(range(len(draws), len(draws) + n))

    monkeypatch.setattr(ids.secrets, "token_bytes", token_bytes)
    monkeypatch.setattr(ids.secrets, "token_hex", lambda n: token_bytes(n).hex())
    assert ids.new_memo_nonce() == "AQIDBAUG"  # base64url of bytes 1..6
    assert ids.new_request_id() == "req_" + bytes(range(2, 18)).hex()
    assert ids.new_memo_nonce() == "AwQFBgcI"
    assert draws == [6, 16, 6]  # one draw per id: nothing pooled


@pytest.mark.parametrize("draw", [ids.new_memo_nonce, ids.new_request_id])
def test_a_forked_child_does_not_repeat_its_parents_ids(draw: Callable[[], str]) -> None:
    draw()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then leave at once
        os.write(write, ",".join(draw() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    parent = {draw() for _ in range(20)}
    assert len(child) == 20 and not child & parent
