"""The Stripe client's offline parts: webhook signatures (the SDK's check, Stripe's
algorithm), SDK errors to spec codes, and the fake's form decoding."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from support.fake_stripe import decode_form, sign

from cedros_pay.bootstrap.stripe import attempt_timeout
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.integrations.stripe.client import StripeClient, _is_outage, _translated

SECRET = "whsec_unit"
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "checkout.session.completed",
                   "data": {"object": {"id": "cs_1", "metadata": {"resource_id": "a"}}}}
                  ).encode()


def test_a_genuine_signature_yields_the_event_and_its_object() -> None:
    event = StripeClient.construct_event(BODY, sign(BODY, SECRET), SECRET)
    assert (event.id, event.type) == ("evt_1", "checkout.session.completed")
    assert event.object == {"id": "cs_1", "metadata": {"resource_id": "a"}}


@pytest.mark.parametrize("age", [299, -299])
def test_signatures_within_five_minutes_verify(age: int) -> None:
    signature = sign(BODY, SECRET, int(time.time()) - age)
    assert StripeClient.construct_event(BODY, signature, SECRET).id == "evt_1"


@pytest.mark.parametrize("signature", [
    sign(BODY, SECRET, int(time.time()) - 310),  # stale
    sign(BODY, "whsec_other"),  # forged
    sign(BODY + b" ", SECRET).replace("v1=", "v0="),  # no v1 scheme
    "", "t=,v1=", "v1=abc", "nonsense",
])
def test_bad_signatures_are_invalid_signature(signature: str) -> None:
    with pytest.raises(CedrosError) as err:
        StripeClient.construct_event(BODY, signature, SECRET)
    assert err.value.code is ErrorCode.INVALID_SIGNATURE


def test_a_tampered_body_does_not_verify() -> None:
    signature = sign(BODY, SECRET)
    with pytest.raises(CedrosError) as err:
        StripeClient.construct_event(BODY.replace(b"cs_1", b"cs_2"), signature, SECRET)
    assert err.value.code is ErrorCode.INVALID_SIGNATURE


def test_only_stripe_failing_counts_as_an_outage() -> None:
    assert _is_outage(stripe.APIConnectionError("timed out"))
    assert _is_outage(stripe.APIError("boom", http_status=500))
    assert _is_outage(stripe.RateLimitError("slow down", http_status=429))
    assert not _is_outage(stripe.InvalidRequestError("no such price", "price",
                                                     http_status=400))
    assert not _is_outage(stripe.AuthenticationError("bad key", http_status=401))
    err = _translated(stripe.InvalidRequestError("No such price: 'p'", "line_items[0][price]",
                                                 code="resource_missing", http_status=400),
                      "create the checkout session")
    assert err.code is ErrorCode.STRIPE_ERROR and err.http_status == 502
    assert err.details == {"stripeError": "InvalidRequestError", "status": 400,
                           "stripeCode": "resource_missing", "param": "line_items[0][price]"}
    assert "No such price" not in err.message  # Stripe's words stay in the log


def test_every_attempt_fits_inside_the_route_deadline() -> None:
    for deadline in (3.0, 6.0, 60.0):
        per = attempt_timeout(deadline)
        assert 3 * per + 0.5 + 1.0 <= deadline or per == 0.5
    assert attempt_timeout(600.0) == 30.0


def test_the_fake_decodes_the_sdk_form_encoding() -> None:
    raw = ("mode=payment&line_items[0][price]=p&line_items[0][quantity]=2&"
           "line_items[1][price_data][unit_amount]=5&metadata[a]=b&discounts[0][coupon]=c")
    assert decode_form(raw) == {
        "mode": "payment", "metadata": {"a": "b"}, "discounts": [{"coupon": "c"}],
        "line_items": [{"price": "p", "quantity": "2"},
                       {"price_data": {"unit_amount": "5"}}]}
