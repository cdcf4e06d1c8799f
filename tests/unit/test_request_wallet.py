"""Which wallet a request names (rate-limit buckets, access log): X-Wallet, then X-Signer,
then a `wallet` query parameter; only a well-formed address counts, and of repeated
headers the first."""

from __future__ import annotations

import pytest

from cedros_pay.rest.middleware._asgi import request_wallet

A = "7cVfgArCheMR6Cs4t6vz5rfnqd56vZq4ndaBrY5xkxXy"
B = "EERmfQqWMUSgsNyMsY2DEhBA57ZgogMtGmBpGcfxJjU7"


def scope(headers: list[tuple[str, str]], query: str = "") -> dict[str, object]:
    return {"headers": [(k.encode(), v.encode()) for k, v in headers],
            "query_string": query.encode()}


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ([("x-wallet", A)], "", A),
    ([("x-signer", B), ("x-wallet", A)], "", A),  # X-Wallet first, wherever it is
    ([("x-wallet", "junk"), ("x-signer", B)], "", B),  # a bad X-Wallet does not count
    ([("x-wallet", f"  {A} ")], "", A),
    ([("x-wallet", "junk"), ("x-wallet", A)], "", None),  # the first X-Wallet decides
    ([], f"wallet={A}", A),
    ([], f"userWallet={B}&x=1", B),
    ([("x-wallet", "junk")], f"user_wallet={A}", A),
    ([("x-other", A)], "wallet=nope", None),
    ([], "", None),
])
def test_the_named_wallet(headers: list[tuple[str, str]], query: str,
                          expected: str | None) -> None:
    assert request_wallet(scope(headers, query)) == expected
