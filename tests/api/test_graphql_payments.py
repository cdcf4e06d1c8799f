"""GraphQL payments: lookup by signature, the admin listing (filters, keyset pages,
totals), and who may open `subscription { paymentEvents }` over a real WebSocket."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api.conftest import client_for, config_from
from api.test_graphql import ADMIN_ENV, ADMIN_KEY, BEARER, admin_nonce, codes, graphql, sign
from support.graphql_ws import GraphQLSocket, eventually, serving

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.core.models import PaymentTransaction
from cedros_pay.resolvers.events import PaymentEvent
from cedros_pay.storage.store import Store, memory_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = "A1iceWa11et1111111111111111111111111111111"
BOB = "BobWa11et22222222222222222222222222222222"
MONEY = "{ atomic decimals asset display }"
PAYMENT_FIELDS = f"signature resource wallet amount {MONEY} paidAt metadata method"
LIST = f"""query($first: Int, $after: String, $filter: PaymentFilterInput) {{
  payments(first: $first, after: $after, filter: $filter) {{
    edges {{ cursor node {{ {PAYMENT_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    totalCount totals {{ asset count amount {MONEY} }} }} }}"""
LOOKUP = f"query($s: String!) {{ payment(signature: $s) {{ {PAYMENT_FIELDS} }} }}"
EVENTS = f"""subscription {{ paymentEvents {{ eventId eventType resource method wallet
  signature amount {MONEY} paidAt metadata }} }}"""


def tx(signature: str, minutes: int, *, resource: str = "article", wallet: str = ALICE,
       atomic: int = 1_000_000, asset: str = "USDC", tenant: str = "default",
       ) -> PaymentTransaction:
    return PaymentTransaction(signature=signature, resource_id=resource, wallet=wallet,
                              amount_atomic=atomic, asset=asset, tenant_id=tenant,
                              created_at=T0 + timedelta(minutes=minutes),
                              metadata={"resource_type": "regular"})


# Newest first: s5 (t+5), then s4 and s3 share t+4 (the signature breaks the tie), ...
LEDGER = [
    tx("sig1", 1),
    tx("sig2", 2, wallet=BOB, atomic=2_500_000),
    tx("sig3", 4, resource="video"),
    tx("sig4", 4, resource="video", wallet=BOB),
    tx("stripe:cs_test_5", 5, wallet="", atomic=1500, asset="USD"),
    tx("sig-acme", 3, tenant="acme"),
]


@pytest.fixture
async def store() -> Store:
    s = memory_store()
    for row in LEDGER:
        assert await s.payments.record(row)
    return s


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(config_from(ADMIN_ENV), store=store)) as c:
        yield c


def signatures(body: dict[str, Any]) -> list[str]:
    return [e["node"]["signature"] for e in body["data"]["payments"]["edges"]]


# --- payment(signature) --------------------------------------------------------------------


async def test_payment_lookup_returns_the_recorded_payment(client: httpx.AsyncClient) -> None:
    body = await graphql(client, LOOKUP, {"s": "sig2"})
    assert "errors" not in body
    assert body["data"]["payment"] == {
        "signature": "sig2", "resource": "article", "wallet": BOB,
        "amount": {"atomic": "2500000", "decimals": 6, "asset": "USDC",
                   "display": "2.50 USDC"},
        "paidAt": "2026-03-01T12:02:00Z", "metadata": {"resource_type": "regular"},
        "method": "X402",
    }
    card = (await graphql(client, LOOKUP, {"s": "stripe:cs_test_5"}))["data"]["payment"]
    assert card["method"] == "STRIPE" and card["amount"]["display"] == "15.00 USD"


async def test_payment_lookup_is_null_for_unknown_and_other_tenants_payments(
    client: httpx.AsyncClient,
) -> None:
    unknown = await graphql(client, LOOKUP, {"s": "never-paid"})
    assert unknown == {"data": {"payment": None}}
    assert (await graphql(client, LOOKUP, {"s": "sig-acme"}))["data"]["payment"] is None
    acme = await graphql(client, LOOKUP, {"s": "sig-acme"}, headers={"X-Tenant-ID": "acme"})
    assert acme["data"]["payment"]["signature"] == "sig-acme"
    huge = await graphql(client, LOOKUP, {"s": "x" * 300})
    assert codes(huge) == ["invalid_field"]


# --- payments (admin) ----------------------------------------------------------------------


async def test_payments_listing_refuses_callers_without_admin_credentials(
    client: httpx.AsyncClient,
) -> None:
    anonymous = await graphql(client, LIST)
    wrong_key = await graphql(client, LIST, headers={"Authorization": "Bearer nope"})
    for body in (anonymous, wrong_key):
        assert codes(body) == ["unauthorized"]
        assert body["data"]["payments"] is None


async def test_payments_page_newest_first_with_opaque_cursors(
    client: httpx.AsyncClient,
) -> None:
    first = await graphql(client, LIST, {"first": 2}, headers=BEARER)
    assert "errors" not in first
    assert signatures(first) == ["stripe:cs_test_5", "sig4"]
    info = first["data"]["payments"]["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is False
    assert info["endCursor"] == first["data"]["payments"]["edges"][-1]["cursor"]
    assert "sig4" not in info["endCursor"]  # opaque
    base64.urlsafe_b64decode(info["endCursor"])

    second = await graphql(client, LIST, {"first": 2, "after": info["endCursor"]},
                           headers=BEARER)
    assert signatures(second) == ["sig3", "sig2"]  # the t+4 tie split by signature
    info = second["data"]["payments"]["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is True
    last = await graphql(client, LIST, {"first": 2, "after": info["endCursor"]},
                         headers=BEARER)
    assert signatures(last) == ["sig1"]
    assert last["data"]["payments"]["pageInfo"]["hasNextPage"] is False
    # Totals cover the whole filter (this tenant), the same on every page.
    for page in (first, second, last):
        conn = page["data"]["payments"]
        assert conn["totalCount"] == 5
        assert conn["totals"] == [
            {"asset": "USD", "count": 1, "amount": {"atomic": "1500", "decimals": 2,
                                                    "asset": "USD", "display": "15.00 USD"}},
            {"asset": "USDC", "count": 4, "amount": {"atomic": "5500000", "decimals": 6,
                                                     "asset": "USDC",
                                                     "display": "5.50 USDC"}},
        ]


async def test_payments_default_page_and_the_new_rows_do_not_shift_a_cursor(
    client: httpx.AsyncClient, store: Store,
) -> None:
    first = await graphql(client, LIST, {"first": 3}, headers=BEARER)
    cursor = first["data"]["payments"]["pageInfo"]["endCursor"]
    assert await store.payments.record(tx("sig-new", 60))  # arrives at the top meanwhile
    rest = await graphql(client, LIST, {"after": cursor}, headers=BEARER)
    assert signatures(rest) == ["sig2", "sig1"]
    everything = await graphql(client, "{ payments { edges { node { signature } } } }",
                               headers=BEARER)
    assert signatures(everything)[0] == "sig-new" and len(signatures(everything)) == 6


@pytest.mark.parametrize(("where", "expected"), [
    ({"resource": "video"}, ["sig4", "sig3"]),
    ({"wallet": BOB}, ["sig4", "sig2"]),
    ({"method": "STRIPE"}, ["stripe:cs_test_5"]),
    ({"method": "X402"}, ["sig4", "sig3", "sig2", "sig1"]),
    ({"since": "2026-03-01T12:02:00Z", "until": "2026-03-01T12:05:00Z"},
     ["sig4", "sig3", "sig2"]),
    ({"resource": "video", "wallet": BOB, "method": "X402"}, ["sig4"]),
    ({"resource": "", "wallet": None}, ["stripe:cs_test_5", "sig4", "sig3", "sig2", "sig1"]),
    ({"resource": "nothing-here"}, []),
])
async def test_payments_filters_apply_to_rows_and_totals(
    client: httpx.AsyncClient, where: dict[str, Any], expected: list[str],
) -> None:
    body = await graphql(client, LIST, {"filter": where}, headers=BEARER)
    assert "errors" not in body, body
    assert signatures(body) == expected
    conn = body["data"]["payments"]
    assert conn["totalCount"] == len(expected)
    assert sum(t["count"] for t in conn["totals"]) == len(expected)


async def test_payments_filtered_pages_and_their_totals(client: httpx.AsyncClient) -> None:
    where = {"method": "X402"}
    page = await graphql(client, LIST, {"first": 3, "filter": where}, headers=BEARER)
    cursor = page["data"]["payments"]["pageInfo"]["endCursor"]
    rest = await graphql(client, LIST, {"first": 3, "filter": where, "after": cursor},
                         headers=BEARER)
    assert signatures(page) + signatures(rest) == ["sig4", "sig3", "sig2", "sig1"]
    assert rest["data"]["payments"]["totals"] == [
        {"asset": "USDC", "count": 4, "amount": {"atomic": "5500000", "decimals": 6,
                                                 "asset": "USDC", "display": "5.50 USDC"}}]


async def test_payments_listing_is_tenant_scoped(client: httpx.AsyncClient) -> None:
    body = await graphql(client, LIST, headers={**BEARER, "X-Tenant-ID": "acme"})
    assert signatures(body) == ["sig-acme"]
    assert body["data"]["payments"]["totalCount"] == 1


async def test_payments_bad_cursor_page_size_and_filter_are_invalid_field(
    client: httpx.AsyncClient,
) -> None:
    product_cursor = base64.urlsafe_b64encode(b"product:p-article").decode()
    bad_time = base64.urlsafe_b64encode(b"payment:yesterday|sig1").decode()
    no_sig = base64.urlsafe_b64encode(b"payment:2026-03-01T12:00:00Z|").decode()
    for variables, field in [({"after": "garbage"}, "after"),
                             ({"after": product_cursor}, "after"),
                             ({"after": bad_time}, "after"),
                             ({"after": no_sig}, "after"),
                             ({"first": 0}, "first"),
                             ({"first": 101}, "first"),
                             ({"filter": {"wallet": "w" * 300}}, "filter.wallet")]:
        body = await graphql(client, LIST, variables, headers=BEARER)
        assert codes(body) == ["invalid_field"], variables
        assert body["errors"][0]["extensions"]["details"] == {"field": field}
        assert body["data"]["payments"] is None
    bad_date = await graphql(client, LIST, {"filter": {"since": "last week"}}, headers=BEARER)
    assert codes(bad_date) == ["invalid_field"]


async def test_payments_accepts_a_signed_admin_message(client: httpx.AsyncClient) -> None:
    headers = sign(await admin_nonce(client))
    body = await graphql(client, "{ payments(first: 1) { totalCount } }", headers=headers)
    assert body == {"data": {"payments": {"totalCount": 5}}}


# --- subscription { paymentEvents }: who may listen ------------------------------------------


@pytest.fixture
async def served(store: Store) -> AsyncIterator[tuple[CedrosApp, str]]:
    app = create_app(config_from(ADMIN_ENV), store=store)
    async with serving(app) as url:
        yield app, url


def hub_event(tenant: str, **kw: Any) -> PaymentEvent:
    return PaymentEvent(event_id="evt_" + "0" * 24, event_timestamp=T0, tenant_id=tenant,
                        resource_id="article", paid_at=T0, **kw)


async def test_subscription_without_credentials_fails_with_unauthorized(
    served: tuple[CedrosApp, str],
) -> None:
    app, url = served
    async with GraphQLSocket.open(url) as sock:
        assert (await sock.init())["type"] == "connection_ack"  # public fields stay usable
        await sock.subscribe("1", EVENTS)
        refused = await sock.receive()
        assert (refused["type"], refused["id"]) == ("error", "1")
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["unauthorized"]
        await sock.subscribe("2", "{ payment(signature: \"sig1\") { resource } }")
        answer = await sock.receive()
        assert answer["payload"] == {"data": {"payment": {"resource": "article"}}}
    assert app.services is not None and app.services.payment_events.subscriber_count == 0


@pytest.mark.parametrize("credentials", [
    {"payload": {"authorization": "Bearer wrong-key"}},
    {"headers": {"Authorization": "Bearer wrong-key"}},
    {"payload": {"x-signer": "nobody", "x-signature": "AAAA", "x-message": "admin:nonce"}},
])
async def test_wrong_credentials_close_the_socket_with_4403(
    served: tuple[CedrosApp, str], credentials: dict[str, dict[str, str]],
) -> None:
    _, url = served
    async with GraphQLSocket.open(url, headers=credentials.get("headers")) as sock:
        await sock.send({"type": "connection_init", "payload": credentials.get("payload", {})})
        assert await sock.closed_with() == 4403


async def test_admin_key_in_connection_init_streams_this_tenants_events_only(
    served: tuple[CedrosApp, str],
) -> None:
    app, url = served
    assert app.services is not None
    hub = app.services.payment_events
    async with GraphQLSocket.open(url) as sock:
        assert (await sock.init({"authorization": f"Bearer {ADMIN_KEY}"}))["type"] == \
            "connection_ack"
        await sock.subscribe("live", EVENTS)
        await eventually(lambda: hub.subscriber_count == 1, "the subscription")
        hub.publish(hub_event("acme", method="x402", crypto_atomic_amount=9,
                              crypto_token="USDC", proof_signature="theirs"))
        hub.publish(hub_event("default", method="stripe", fiat_amount_cents=1500,
                              fiat_currency="usd", stripe_session_id="cs_live_1",
                              metadata={"order": "42"}))
        message = await sock.receive()
        assert (message["type"], message["id"]) == ("next", "live")
        assert message["payload"]["data"]["paymentEvents"] == {
            "eventId": "evt_" + "0" * 24, "eventType": "payment.succeeded",
            "resource": "article", "method": "STRIPE", "wallet": None,
            "signature": "stripe:cs_live_1",
            "amount": {"atomic": "1500", "decimals": 2, "asset": "USD",
                       "display": "15.00 USD"},
            "paidAt": "2026-03-01T12:00:00Z", "metadata": {"order": "42"},
        }
        await sock.complete("live")
        # Unsubscribing releases the event queue (the resolver's generator is closed).
        await eventually(lambda: hub.subscriber_count == 0, "the unsubscription")


async def test_handshake_headers_and_signed_messages_authenticate_too(
    served: tuple[CedrosApp, str],
) -> None:
    app, url = served
    assert app.services is not None
    hub = app.services.payment_events
    async with httpx.AsyncClient(base_url=url) as http:
        signed = {k.lower(): v for k, v in sign(await admin_nonce(http)).items()}
    async with (GraphQLSocket.open(url, headers={**BEARER, "X-Tenant-ID": "acme"}) as by_header,
                GraphQLSocket.open(url) as by_signature):
        assert (await by_header.init())["type"] == "connection_ack"
        assert (await by_signature.init(signed))["type"] == "connection_ack"
        await by_header.subscribe("h", EVENTS)
        await by_signature.subscribe("s", EVENTS)
        await eventually(lambda: hub.subscriber_count == 2, "both subscriptions")
        hub.publish(hub_event("acme", method="x402", crypto_atomic_amount=9,
                              crypto_token="USDC", proof_signature="acme-sig", wallet=BOB))
        hub.publish(hub_event("default", method="x402", crypto_atomic_amount=7,
                              crypto_token="USDC", proof_signature="default-sig"))
        acme = (await by_header.receive())["payload"]["data"]["paymentEvents"]
        default = (await by_signature.receive())["payload"]["data"]["paymentEvents"]
    assert (acme["signature"], acme["wallet"], acme["amount"]["atomic"]) == ("acme-sig", BOB,
                                                                             "9")
    assert (default["signature"], default["method"]) == ("default-sig", "X402")
