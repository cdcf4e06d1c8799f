"""x402 over HTTP (x402/http.py): which header a request's payment is read from, and the
settlement header each protocol version answers with."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.x402.http import (
    answer_version,
    encode_payment_required,
    read_payment,
    refusal,
    settlement_header,
)
from cedros_pay.x402.schemas import ExactRequirement, PaymentRequired, SettleResponse

DEVNET_CAIP2 = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"


def b64(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def unb64(value: str) -> Any:
    return json.loads(base64.b64decode(value))


def test_payment_signature_wins_and_carries_v2_only() -> None:
    v2, v1 = b64({"x402Version": 2}), b64({"x402Version": 1})
    assert read_payment(v1, v2).version == 2
    assert read_payment(v1, None).version == 1
    with pytest.raises(CedrosError) as caught:
        read_payment(None, v1)
    assert caught.value.code is ErrorCode.INVALID_PAYMENT_PROOF
    assert caught.value.details == {"reason": "unsupported_version", "x402Version": 1}
    with pytest.raises(CedrosError) as caught:
        read_payment("", None)
    assert caught.value.code is ErrorCode.INVALID_PAYMENT_PROOF


def test_a_reply_speaks_the_version_paid_with() -> None:
    header = read_payment(b64({"x402Version": 1}), None)
    assert answer_version(None, header) == 1
    assert answer_version("anything", header) == 2
    assert answer_version(None, None) == 0  # unreadable: the Cedros form


@pytest.mark.parametrize(("version", "name", "body"), [
    (0, "X-PAYMENT-RESPONSE", {"success": True, "txHash": "SIG", "networkId": "devnet",
                               "error": None}),
    (1, "X-PAYMENT-RESPONSE", {"success": True, "transaction": "SIG",
                               "network": "solana-devnet", "payer": "PAYER", "txHash": "SIG",
                               "networkId": "devnet", "error": None}),
    (2, "PAYMENT-RESPONSE", {"success": True, "transaction": "SIG", "network": DEVNET_CAIP2,
                             "payer": "PAYER"}),
])
def test_settlement_headers(version: int, name: str, body: dict[str, Any]) -> None:
    got = settlement_header(SettleResponse(version, "devnet", "SIG", "PAYER"))
    assert (got[0], unb64(got[1])) == (name, body)


@pytest.mark.parametrize(("version", "name", "body"), [
    (0, "X-PAYMENT-RESPONSE", {"success": False, "txHash": None, "networkId": None,
                               "error": "short"}),
    (1, "X-PAYMENT-RESPONSE", {"success": False, "errorReason": "amount_below_minimum",
                               "errorMessage": "short", "transaction": "",
                               "network": "solana-devnet", "payer": "", "txHash": None,
                               "networkId": None, "error": "short"}),
    (2, "PAYMENT-RESPONSE", {"success": False, "errorReason": "amount_below_minimum",
                             "errorMessage": "short", "transaction": "",
                             "network": DEVNET_CAIP2, "payer": ""}),
])
def test_refusal_headers(version: int, name: str, body: dict[str, Any]) -> None:
    err = CedrosError(ErrorCode.AMOUNT_BELOW_MINIMUM, "short")
    got = settlement_header(refusal(version, "devnet", err))
    assert (got[0], unb64(got[1])) == (name, body)


def test_payment_required_header() -> None:
    offer = ExactRequirement(network="devnet", asset="MINT", amount_atomic=5, pay_to="W",
                             max_timeout_seconds=300, fee_payer="F", memo="m", url="u",
                             description="d")
    assert unb64(encode_payment_required(PaymentRequired("u", "d"))) == {
        "x402Version": 2, "resource": {"url": "u", "description": "d",
                                       "mimeType": "application/json"}, "accepts": []}
    doc = unb64(encode_payment_required(PaymentRequired("u", "d", accepts=(offer,),
                                                        error="why")))
    assert doc["accepts"] == [offer.entry()] and doc["error"] == "why"
