"""X-PAYMENT header parsing (spec 07 steps 1-5, spec 16): shapes in, codes and reasons out."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.signature import Signature

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.x402.cedros_v0 import parse_payment_header, parse_v0
from cedros_pay.x402.http import MAX_HEADER_BYTES, decode_payment_header
from cedros_pay.x402.reasons import Reason
from cedros_pay.x402.schemas import ResourceType

TX = base64.b64encode(b"\x01" + bytes(64) + b"not really a transaction").decode()
SIGNATURE = str(Keypair().sign_message(b"x"))
ADDRESS = str(Keypair().pubkey())


def doc(**payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"transaction": TX}
    body.update(payload)
    return {"x402Version": 0, "scheme": "solana-spl-transfer", "network": "devnet",
            "payload": body}


def b64(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def refused(value: str) -> CedrosError:
    with pytest.raises(CedrosError) as caught:
        parse_payment_header(value)
    return caught.value


# --- accepted shapes ---------------------------------------------------------------------


def test_base64_header_parses_every_field() -> None:
    payment = parse_payment_header(b64(doc(
        signature=SIGNATURE, resource="article-1", resourceType="cart", feePayer=ADDRESS,
        memo="cedros:article-1:abc", recipientTokenAccount=ADDRESS,
        metadata={"couponCode": "SAVE10"})))
    assert payment.x402_version == 0
    assert payment.scheme == "solana-spl-transfer"
    assert payment.network == "devnet"
    body = payment.payload
    assert body.transaction == TX
    assert body.signature == SIGNATURE
    assert body.resource == "article-1"
    assert body.resource_type is ResourceType.CART
    assert body.fee_payer == ADDRESS
    assert body.memo == "cedros:article-1:abc"
    assert body.recipient_token_account == ADDRESS
    assert dict(body.metadata) == {"couponCode": "SAVE10"}


def test_raw_json_header_is_accepted_for_testing() -> None:
    payment = parse_payment_header(json.dumps(doc(resource="r")))
    assert payment.payload.resource == "r"
    assert payment.payload.resource_type is ResourceType.REGULAR


def test_url_safe_unpadded_base64_is_accepted() -> None:
    raw = json.dumps(doc(memo="??>>")).encode()
    value = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert parse_payment_header(value).payload.memo == "??>>"


def test_solana_scheme_alias_is_accepted() -> None:
    assert parse_payment_header(b64({**doc(), "scheme": "solana"})).scheme == "solana"


def test_nulls_are_the_same_as_absent() -> None:
    body = parse_payment_header(b64(doc(signature=None, resource=None, resourceType=None,
                                        feePayer=None, memo=None, metadata=None))).payload
    assert body.signature is None and body.fee_payer is None and body.memo is None
    assert body.resource_type is ResourceType.REGULAR and dict(body.metadata) == {}


def test_metadata_scalars_are_stringified_and_nulls_dropped() -> None:
    body = parse_payment_header(b64(doc(metadata={
        "a": "text", "n": 3, "f": 1.5, "yes": True, "gone": None, "couponCode": None})))
    assert dict(body.payload.metadata) == {"a": "text", "n": "3", "f": "1.5", "yes": "true"}


def test_resource_type_is_case_insensitive_and_unknown_fields_are_ignored() -> None:
    payment = parse_payment_header(b64({**doc(resourceType="Refund", extra=1), "new": {}}))
    assert payment.payload.resource_type is ResourceType.REFUND


def test_other_versions_decode_so_a_caller_can_route_them() -> None:
    header = decode_payment_header(b64({"x402Version": 1, "scheme": "exact",
                                        "network": "solana-devnet", "payload": {}}))
    assert header.version == 1 and header.document["scheme"] == "exact"
    with pytest.raises(CedrosError) as caught:
        parse_v0(header)
    assert caught.value.code is ErrorCode.INVALID_PAYMENT_PROOF
    assert caught.value.details == {"reason": Reason.UNSUPPORTED_VERSION.value,
                                    "x402Version": 1}


# --- malformed inputs: each is a CedrosError with a spec code and a reason ----------------

MALFORMED: list[tuple[str, str, Reason]] = [
    ("empty", "", Reason.HEADER_EMPTY),
    ("blank", "   ", Reason.HEADER_EMPTY),
    ("too large", "A" * (MAX_HEADER_BYTES + 4), Reason.HEADER_TOO_LARGE),
    ("not base64", "this is not base64!", Reason.HEADER_NOT_BASE64),
    ("truncated base64", "QUJDR", Reason.HEADER_NOT_BASE64),
    ("base64 of binary", base64.b64encode(b"\xff\xfe\x00").decode(), Reason.HEADER_NOT_UTF8),
    ("base64 of text", base64.b64encode(b"hello").decode(), Reason.HEADER_NOT_JSON),
    ("broken raw json", '{"x402Version": 0,', Reason.HEADER_NOT_JSON),
    ("json array", b64([doc()]), Reason.HEADER_NOT_OBJECT),
    ("json string", b64("x402"), Reason.HEADER_NOT_OBJECT),
    ("NaN constant", '{"x402Version": NaN}', Reason.HEADER_NOT_JSON),
    ("deep nesting", base64.b64encode(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}").decode(),
     Reason.HEADER_NOT_JSON),
    ("duplicate key", '{"x402Version": 0, "x402Version": 1}', Reason.DUPLICATE_KEY),
    ("missing version", b64({k: v for k, v in doc().items() if k != "x402Version"}),
     Reason.MISSING_FIELD),
    ("version as string", b64({**doc(), "x402Version": "0"}), Reason.WRONG_TYPE),
    ("version as bool", b64({**doc(), "x402Version": False}), Reason.WRONG_TYPE),
    ("negative version", b64({**doc(), "x402Version": -1}), Reason.WRONG_TYPE),
    ("version 2", b64({**doc(), "x402Version": 2}), Reason.UNSUPPORTED_VERSION),
    ("missing scheme", b64({k: v for k, v in doc().items() if k != "scheme"}),
     Reason.MISSING_FIELD),
    ("unknown scheme", b64({**doc(), "scheme": "exact"}), Reason.UNSUPPORTED_SCHEME),
    ("scheme not a string", b64({**doc(), "scheme": 7}), Reason.WRONG_TYPE),
    ("missing network", b64({k: v for k, v in doc().items() if k != "network"}),
     Reason.MISSING_FIELD),
    ("missing payload", b64({k: v for k, v in doc().items() if k != "payload"}),
     Reason.MISSING_FIELD),
    ("payload is a string", b64({**doc(), "payload": "tx"}), Reason.WRONG_TYPE),
    ("missing transaction", b64({**doc(), "payload": {"signature": SIGNATURE}}),
     Reason.MISSING_FIELD),
    ("empty transaction", b64(doc(transaction="")), Reason.MISSING_FIELD),
    ("transaction not a string", b64(doc(transaction=["AQ=="])), Reason.WRONG_TYPE),
    ("bad signature text", b64(doc(signature="0OIl")), Reason.INVALID_SIGNATURE_TEXT),
    ("signature not a string", b64(doc(signature=123)), Reason.WRONG_TYPE),
    ("unknown resource type", b64(doc(resourceType="subscription")),
     Reason.INVALID_RESOURCE_TYPE),
    ("bad fee payer", b64(doc(feePayer="not-a-key")), Reason.INVALID_ADDRESS),
    ("bad recipient account", b64(doc(recipientTokenAccount="1" * 60)),
     Reason.INVALID_ADDRESS),
    ("memo not a string", b64(doc(memo={"text": "x"})), Reason.WRONG_TYPE),
    ("metadata is a list", b64(doc(metadata=["a"])), Reason.WRONG_TYPE),
    ("metadata value is an object", b64(doc(metadata={"a": {"b": 1}})),
     Reason.INVALID_METADATA),
    ("metadata value is a list", b64(doc(metadata={"a": [1]})), Reason.INVALID_METADATA),
    ("too much metadata", b64(doc(metadata={str(i): "v" for i in range(65)})),
     Reason.INVALID_METADATA),
]


@pytest.mark.parametrize(("value", "reason"), [(v, r) for _, v, r in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_malformed_header_is_invalid_payment_proof(value: str, reason: Reason) -> None:
    err = refused(value)
    assert err.code is ErrorCode.INVALID_PAYMENT_PROOF
    assert err.http_status == 402
    assert err.details is not None and err.details["reason"] == reason.value
    assert err.message and err.message != ErrorCode.INVALID_PAYMENT_PROOF.user_message


def test_refusals_name_the_offending_field() -> None:
    assert refused(b64(doc(feePayer="nope"))).details == {
        "reason": Reason.INVALID_ADDRESS.value, "field": "payload.feePayer"}
    assert refused(b64({**doc(), "payload": {}})).details == {
        "reason": Reason.MISSING_FIELD.value, "field": "payload.transaction"}


def test_a_non_string_header_is_refused_not_crashed() -> None:
    with pytest.raises(CedrosError) as caught:
        parse_payment_header(b"{}")  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.INVALID_PAYMENT_PROOF


def test_a_valid_signature_string_round_trips() -> None:
    sig = Signature.new_unique()
    assert parse_payment_header(b64(doc(signature=str(sig)))).payload.signature == str(sig)
