"""GraphQL over the shared resolvers: every query and mutation through the real app."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.conftest import client_for, config_from
from solders.keypair import Keypair

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.resolvers.catalog import Catalog, ProductView
from cedros_pay.schema.limits import MAX_ALIASES, MAX_BODY_BYTES, MAX_DEPTH, MAX_TOKENS
from cedros_pay.storage.open import open_store
from cedros_pay.storage.store import memory_store

ADMIN_KEY = "graphql-test-admin-key-0123456789"
SIGNER = Keypair()
ADMIN_ENV = {"CEDROS_ADMIN_API_KEY_1": ADMIN_KEY,
             "CEDROS_ADMIN_PUBLIC_KEY_1": str(SIGNER.pubkey())}
BEARER = {"Authorization": f"Bearer {ADMIN_KEY}"}
YAML_SOURCES = {"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml"}
DB_SOURCES = {"CEDROS_PAYWALL_PRODUCT_SOURCE": "sqlite", "COUPON_SOURCE": "sqlite"}

MONEY = "{ atomic decimals asset display }"
PRODUCT_FIELDS = f"""id description active fiatCurrency stripePriceId cryptoToken
  fiatPrice {MONEY} effectiveFiatPrice {MONEY} cryptoPrice {MONEY}
  effectiveCryptoPrice {MONEY} fiatCouponCodes cryptoCouponCodes
  fiatDiscountPercent cryptoDiscountPercent metadata"""
COUPON_FIELDS = """code discountType discountValue currency scope productIds paymentMethod
  autoApply appliesAt usageLimit usageCount startsAt expiresAt active metadata"""

Gql = Callable[..., Awaitable[dict[str, Any]]]


async def graphql(client: httpx.AsyncClient, query: str,
                  variables: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST one operation; GraphQL answers 200 whether or not fields failed."""
    resp = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                             headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.fixture
async def client(catalog_yaml: str) -> AsyncIterator[httpx.AsyncClient]:
    """conftest's YAML catalog on the memory store, with an admin key and signer."""
    cfg = config_from({**YAML_SOURCES, **ADMIN_ENV}, yaml_path=catalog_yaml)
    async with client_for(create_app(cfg, store=memory_store())) as c:
        yield c


@pytest.fixture
async def db_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An empty catalog kept in a real SQLite file, behind the TTL caches."""
    store = await open_store("sqlite", file_path=str(tmp_path / "graphql.db"))
    cfg = config_from({**DB_SOURCES, **ADMIN_ENV})
    try:
        async with client_for(create_app(cfg, store=store)) as c:
            yield c
    finally:
        await store.close()


async def admin_nonce(client: httpx.AsyncClient) -> str:
    resp = await client.post("/paywall/v1/nonce", json={"purpose": "admin"})
    assert resp.status_code == 200, resp.text
    nonce: str = resp.json()["nonce"]
    return nonce


def sign(nonce: str, signer: Keypair = SIGNER) -> dict[str, str]:
    """DESIGN §7: `X-Message: admin:<nonce>`, Ed25519-signed, signature in base64."""
    message = f"admin:{nonce}"
    signature = signer.sign_message(message.encode())
    return {"X-Signer": str(signer.pubkey()), "X-Message": message,
            "X-Signature": base64.b64encode(bytes(signature)).decode()}


# --- catalog -------------------------------------------------------------------------------


async def test_products_show_effective_prices_per_payment_method(
    client: httpx.AsyncClient,
) -> None:
    body = await graphql(client, f"{{ products {{ totalCount edges {{ cursor node {{"
                                 f" {PRODUCT_FIELDS} }} }} }} }}")
    assert "errors" not in body
    conn = body["data"]["products"]
    assert conn["totalCount"] == 3
    nodes = {e["node"]["id"]: e["node"] for e in conn["edges"]}
    article = nodes["p-article"]
    # SAVE10 is an auto-applied catalog coupon on p-article only (both payment methods).
    assert article["fiatPrice"] == {"atomic": "500", "decimals": 2, "asset": "USD",
                                    "display": "5.00 USD"}
    assert article["effectiveFiatPrice"]["atomic"] == "450"
    assert article["cryptoPrice"] == {"atomic": "5000000", "decimals": 6, "asset": "USDC",
                                      "display": "5.00 USDC"}
    assert article["effectiveCryptoPrice"]["display"] == "4.50 USDC"
    assert article["fiatCouponCodes"] == article["cryptoCouponCodes"] == ["SAVE10"]
    assert article["fiatDiscountPercent"] == article["cryptoDiscountPercent"] == "10.00"
    assert article["metadata"] == {"name": "Premium Article"}
    assert article["cryptoToken"] == "USDC" and article["active"] is True
    video = nodes["p-video"]
    assert video["fiatPrice"] is None and video["effectiveFiatPrice"] is None
    assert video["effectiveCryptoPrice"]["atomic"] == "2500000"
    assert video["cryptoCouponCodes"] == []
    card = nodes["p-stripe-only"]
    assert card["stripePriceId"] == "price_card_only" and card["cryptoPrice"] is None


async def test_products_page_with_opaque_cursors(client: httpx.AsyncClient) -> None:
    query = """query($first: Int, $after: String) { products(first: $first, after: $after) {
        edges { cursor node { id } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } }"""
    first = (await graphql(client, query, {"first": 2}))["data"]["products"]
    assert [e["node"]["id"] for e in first["edges"]] == ["p-article", "p-stripe-only"]
    info = first["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is False
    assert info["endCursor"] == first["edges"][-1]["cursor"]
    assert "p-stripe-only" not in info["endCursor"]  # opaque, not the raw id
    base64.urlsafe_b64decode(info["endCursor"])
    rest = (await graphql(client, query, {"first": 2, "after": info["endCursor"]}))
    page = rest["data"]["products"]
    assert [e["node"]["id"] for e in page["edges"]] == ["p-video"]
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True
    assert page["totalCount"] == 3
    empty = (await graphql(client, query, {"first": 0}))["data"]["products"]
    assert empty["edges"] == [] and empty["pageInfo"]["endCursor"] is None

    bad_cursor = await graphql(client, query, {"after": "not-a-cursor"})
    too_many = await graphql(client, query, {"first": 101})
    assert codes(bad_cursor) == codes(too_many) == ["invalid_field"]
    assert bad_cursor["data"]["products"] is None
    assert too_many["errors"][0]["extensions"]["details"] == {"field": "first"}


async def test_product_by_id_and_unknown_product(client: httpx.AsyncClient) -> None:
    body = await graphql(client, """{ known: product(id: "p-article") {
        id effectiveFiatPrice { atomic } }  missing: product(id: "nope") { id } }""")
    assert body["data"]["known"] == {"id": "p-article", "effectiveFiatPrice": {"atomic": "450"}}
    assert body["data"]["missing"] is None
    [error] = body["errors"]
    assert error["path"] == ["missing"]
    assert error["extensions"] == {"code": "product_not_found", "retryable": False,
                                   "details": {"productId": "nope"}}
    too_long = await graphql(client, '{ product(id: "%s") { id } }' % ("x" * 256))
    assert codes(too_long) == ["invalid_field"]


async def test_validate_coupon_answers_with_spec_codes(client: httpx.AsyncClient) -> None:
    query = """query($code: String!, $ids: [String!], $method: PaymentMethod) {
        validateCoupon(code: $code, productIds: $ids, paymentMethod: $method) {
          valid code discountType discountValue scope applicableProducts paymentMethod
          expiresAt remainingUses error errorCode } }"""

    async def check(code: str, ids: list[str] | None = None,
                    method: str | None = None) -> dict[str, Any]:
        body = await graphql(client, query, {"code": code, "ids": ids, "method": method})
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["validateCoupon"]
        return result

    ok = await check("SAVE10", ["p-article"], "X402")
    assert ok["valid"] is True and ok["errorCode"] is None and ok["error"] is None
    assert (ok["discountType"], ok["scope"]) == ("PERCENTAGE", "SPECIFIC")
    assert float(ok["discountValue"]) == 10
    assert ok["applicableProducts"] == ["p-article"] and ok["paymentMethod"] is None
    assert ok["remainingUses"] is None
    assert (await check("save10"))["code"] == "SAVE10"  # typed in any case
    expired = await check("OLD")
    assert (expired["valid"], expired["errorCode"]) == (False, "coupon_expired")
    assert expired["error"]
    assert (await check("NOPE"))["errorCode"] == "coupon_not_found"
    assert (await check("SAVE10", ["p-video"]))["errorCode"] == "coupon_not_applicable"
    assert (await check("FIXED1", None, "STRIPE"))["errorCode"] == \
        "coupon_wrong_payment_method"
    assert (await check("FIXED1", None, "X402"))["valid"] is True

    blank = await graphql(client, query, {"code": "  "})
    assert codes(blank) == ["missing_field"] and blank["data"]["validateCoupon"] is None
    bad_method = await graphql(client, query, {"code": "SAVE10", "method": "BITCOIN"})
    assert codes(bad_method) == ["invalid_field"] and bad_method["data"] is None


async def test_quote_has_the_stripe_option_and_the_x402_requirement(
    client: httpx.AsyncClient,
) -> None:
    query = f"""query($r: String!, $c: String) {{ quote(resource: $r, couponCode: $c) {{
        resource expiresAt
        stripe {{ priceId currency description metadata amount {MONEY} }}
        x402 {{ scheme network maxAmountRequired amount {MONEY} resource description mimeType
                payTo payToOwner asset tokenSymbol decimals maxTimeoutSeconds memo feePayer }}
        fiatPrice {{ original {{ atomic }} effective {{ atomic }} discount {{ atomic }}
                     catalogCoupons checkoutCoupons }}
        cryptoPrice {{ effective {{ atomic }} catalogCoupons checkoutCoupons }} }} }}"""
    plain = (await graphql(client, query, {"r": "p-article"}))["data"]["quote"]
    rest = await client.post("/paywall/v1/quote", json={"resource": "p-article"})
    [accepts] = rest.json()["accepts"]
    x402 = plain["x402"]
    # 5 USDC, SAVE10 then CHECKOUT5: 4.275 rounded up to 4.28 (same as REST).
    assert x402["maxAmountRequired"] == accepts["maxAmountRequired"] == "4280000"
    assert x402["amount"]["display"] == "4.28 USDC"
    assert (x402["payTo"], x402["asset"], x402["scheme"]) == \
        (accepts["payTo"], accepts["asset"], accepts["scheme"])
    assert (x402["tokenSymbol"], x402["decimals"], x402["maxTimeoutSeconds"]) == ("USDC", 6, 300)
    assert x402["memo"].startswith("article:p-article:") and x402["feePayer"] is None
    assert plain["cryptoPrice"]["catalogCoupons"] == ["SAVE10"]
    assert plain["cryptoPrice"]["checkoutCoupons"] == ["CHECKOUT5"]
    assert plain["expiresAt"].endswith("Z")
    fiat = plain["fiatPrice"]
    assert (fiat["original"]["atomic"], fiat["effective"]["atomic"]) == ("500", "428")
    assert fiat["discount"]["atomic"] == "72"
    assert plain["stripe"]["amount"]["atomic"] == "428"
    assert plain["stripe"]["metadata"]["coupon_codes"] == "SAVE10,CHECKOUT5"

    fixed = (await graphql(client, query, {"r": "p-article", "c": "FIXED1"}))["data"]["quote"]
    assert fixed["x402"]["maxAmountRequired"] == "3280000"
    assert fixed["cryptoPrice"]["checkoutCoupons"] == ["CHECKOUT5", "FIXED1"]
    ignored = (await graphql(client, query, {"r": "p-article", "c": "NOPE"}))["data"]["quote"]
    assert ignored["x402"]["maxAmountRequired"] == "4280000"
    card_only = (await graphql(client, query, {"r": "p-stripe-only"}))["data"]["quote"]
    assert card_only["x402"] is None and card_only["stripe"]["priceId"] == "price_card_only"

    unknown = await graphql(client, query, {"r": "nope"})
    assert codes(unknown) == ["resource_not_found"] and unknown["data"]["quote"] is None
    blank = await graphql(client, query, {"r": ""})
    assert codes(blank) == ["missing_field"]


# --- carts ---------------------------------------------------------------------------------

CART_QUOTE = f"""mutation($input: CartQuoteInput!) {{ createCartQuote(input: $input) {{
    cartId expiresAt metadata checkoutCoupons subtotal {MONEY} total {MONEY}
    items {{ resource quantity description appliedCoupons unitPrice {{ atomic }}
             originalUnitPrice {{ atomic }} product {{ id effectiveCryptoPrice {{ atomic }} }} }}
    quote {{ maxAmountRequired resource memo payTo }} }} }}"""


async def test_create_cart_quote_then_read_the_cart(client: httpx.AsyncClient) -> None:
    cart_input = {"items": [{"resource": "p-article", "quantity": 2},
                            {"resource": "p-video", "quantity": 0, "metadata": {"k": "v"}}],
                  "metadata": {"order": "42"}}
    body = await graphql(client, CART_QUOTE, {"input": cart_input})
    assert "errors" not in body, body
    quote = body["data"]["createCartQuote"]
    assert quote["cartId"].startswith("cart_")
    lines = quote["items"]
    assert [(x["resource"], x["quantity"]) for x in lines] == [("p-article", 2), ("p-video", 1)]
    assert lines[0]["unitPrice"]["atomic"] == "4500000"
    assert lines[0]["originalUnitPrice"]["atomic"] == "5000000"
    assert lines[0]["appliedCoupons"] == ["SAVE10"]
    assert lines[0]["product"] == {"id": "p-article",
                                   "effectiveCryptoPrice": {"atomic": "4500000"}}
    # 2 x 4.50 + 2.50 = 11.50, CHECKOUT5 -> 10.925 -> 10.93 (rounded up to cents).
    assert quote["subtotal"]["atomic"] == "11500000"
    assert quote["total"] == {"atomic": "10930000", "decimals": 6, "asset": "USDC",
                              "display": "10.93 USDC"}
    assert quote["checkoutCoupons"] == ["CHECKOUT5"]
    assert quote["quote"]["maxAmountRequired"] == "10930000"
    assert quote["quote"]["resource"] == f"cart:{quote['cartId']}"
    assert quote["metadata"]["order"] == "42"

    read = """query($id: String!) { cart(id: $id) { id total { atomic } metadata createdAt
        expiresAt expired paid paidBy
        items { resource quantity unitPrice { atomic } metadata product { id } } } }"""
    cart = (await graphql(client, read, {"id": quote["cartId"]}))["data"]["cart"]
    assert cart["id"] == quote["cartId"] and cart["total"]["atomic"] == "10930000"
    assert (cart["expired"], cart["paid"], cart["paidBy"]) == (False, False, None)
    assert cart["expiresAt"] == quote["expiresAt"]
    assert cart["items"][1] == {"resource": "p-video", "quantity": 1,
                                "unitPrice": {"atomic": "2500000"}, "metadata": {"k": "v"},
                                "product": {"id": "p-video"}}
    prefixed = await graphql(client, read, {"id": f"cart:{quote['cartId']}"})
    assert prefixed["data"]["cart"]["id"] == quote["cartId"]

    missing = await graphql(client, read, {"id": "cart_" + "0" * 32})
    assert codes(missing) == ["cart_not_found"] and missing["data"]["cart"] is None


async def test_cart_quote_errors_carry_spec_codes(client: httpx.AsyncClient) -> None:
    async def error_of(cart_input: dict[str, Any]) -> str:
        body = await graphql(client, CART_QUOTE, {"input": cart_input})
        assert body["data"]["createCartQuote"] is None
        [code] = codes(body)
        return code

    assert await error_of({"items": []}) == "empty_cart"
    assert await error_of({"items": [{"resource": "nope"}]}) == "resource_not_found"
    assert await error_of({"items": [{"resource": "p-stripe-only"}]}) == "invalid_cart_item"
    assert await error_of({"items": [{"resource": "p-video", "metadata": {"n": 1}}]}) == \
        "invalid_field"
    assert await error_of({"items": [{"resource": "p-video"}], "couponCode": "X" * 300}) == \
        "invalid_field"


async def test_a_manual_checkout_coupon_prices_the_cart(client: httpx.AsyncClient) -> None:
    body = await graphql(client, CART_QUOTE, {"input": {
        "items": [{"resource": "p-video"}], "couponCode": "FIXED1"}})
    quote = body["data"]["createCartQuote"]
    # 2.50: CHECKOUT5 -> 2.375, then FIXED1 $1 -> 1.375 -> 1.38.
    assert quote["total"]["atomic"] == "1380000"
    assert quote["checkoutCoupons"] == ["CHECKOUT5", "FIXED1"]


# --- admin authentication ------------------------------------------------------------------

COUPONS = f"""query($all: Boolean!) {{ coupons(includeInactive: $all) {{ totalCount
    edges {{ node {{ {COUPON_FIELDS} products {{ id }} }} }} }} }}"""


async def test_admin_fields_without_credentials_are_unauthorized(
    client: httpx.AsyncClient,
) -> None:
    body = await graphql(client, '{ coupons { totalCount } products { totalCount } }')
    assert body["data"]["coupons"] is None
    assert body["data"]["products"]["totalCount"] == 3  # the public field still answers
    [error] = body["errors"]
    assert error["path"] == ["coupons"]
    assert error["extensions"]["code"] == "unauthorized"

    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_KEY},
                    {"X-Signer": str(SIGNER.pubkey()), "X-Message": "admin:x",
                     "X-Signature": base64.b64encode(b"\0" * 64).decode()}):
        refused = await graphql(client, "{ coupons { totalCount } }", headers=headers)
        assert codes(refused) == ["unauthorized"] and refused["data"]["coupons"] is None


async def test_admin_with_bearer_key_lists_coupons(client: httpx.AsyncClient) -> None:
    body = await graphql(client, COUPONS, {"all": False}, headers=BEARER)
    assert "errors" not in body, body
    coupons = {e["node"]["code"]: e["node"] for e in body["data"]["coupons"]["edges"]}
    assert set(coupons) == {"SAVE10", "CHECKOUT5", "FIXED1", "OLD"}
    save = coupons["SAVE10"]
    assert (save["discountType"], save["scope"], save["appliesAt"], save["autoApply"]) == \
        ("PERCENTAGE", "SPECIFIC", "CATALOG", True)
    assert save["productIds"] == ["p-article"] and save["products"] == [{"id": "p-article"}]
    assert coupons["FIXED1"]["paymentMethod"] == "X402"
    assert coupons["FIXED1"]["currency"].lower() == "usd"
    assert coupons["OLD"]["expiresAt"] == "2020-01-01T00:00:00Z"


async def test_signed_admin_request_works_once(client: httpx.AsyncClient) -> None:
    headers = sign(await admin_nonce(client))
    # Two admin fields, one request: the nonce is checked (and spent) once.
    both = await graphql(client, "{ a: coupons { totalCount } b: coupons { totalCount } }",
                         headers=headers)
    assert "errors" not in both, both
    assert both["data"]["a"]["totalCount"] == both["data"]["b"]["totalCount"] == 4
    replay = await graphql(client, "{ coupons { totalCount } }", headers=headers)
    assert codes(replay) == ["unauthorized"] and replay["data"]["coupons"] is None
    assert replay["errors"][0]["extensions"]["details"]["reason"] == "already_used"


async def test_signature_from_an_unknown_signer_is_refused(client: httpx.AsyncClient) -> None:
    nonce = await admin_nonce(client)
    stranger = await graphql(client, "{ coupons { totalCount } }", headers=sign(nonce, Keypair()))
    # A signature that verifies proves who the caller is: not an admin, 403's code.
    assert codes(stranger) == ["forbidden"] and stranger["data"]["coupons"] is None
    # One that does not verify proves nothing: 401's code.
    forged = {**sign(nonce), "X-Signer": str(Keypair().pubkey())}
    refused = await graphql(client, "{ coupons { totalCount } }", headers=forged)
    assert codes(refused) == ["unauthorized"] and refused["data"]["coupons"] is None
    # The forged request did not burn the nonce: its owner can still use it.
    genuine = await graphql(client, "{ coupons { totalCount } }", headers=sign(nonce))
    assert "errors" not in genuine


async def test_a_nonce_for_another_purpose_is_refused(client: httpx.AsyncClient) -> None:
    resp = await client.post("/paywall/v1/nonce", json={"purpose": "refund_approve"})
    body = await graphql(client, "{ coupons { totalCount } }",
                         headers=sign(resp.json()["nonce"]))
    assert codes(body) == ["unauthorized"]
    assert body["errors"][0]["extensions"]["details"]["reason"] == "wrong_purpose"


# --- admin writes --------------------------------------------------------------------------

CREATE_PRODUCT = f"""mutation($input: ProductInput!) {{ createProduct(input: $input) {{
    {PRODUCT_FIELDS} createdAt updatedAt subscription {{ billingPeriod trialDays }} }} }}"""
UPDATE_PRODUCT = f"""mutation($input: ProductInput!) {{ updateProduct(input: $input) {{
    {PRODUCT_FIELDS} }} }}"""
DELETE_PRODUCT = "mutation($id: ID!) { deleteProduct(id: $id) { id deleted } }"
CREATE_COUPON = f"""mutation($input: CouponInput!) {{ createCoupon(input: $input) {{
    {COUPON_FIELDS} }} }}"""
UPDATE_COUPON = f"""mutation($input: CouponInput!) {{ updateCoupon(input: $input) {{
    {COUPON_FIELDS} }} }}"""
DELETE_COUPON = "mutation($code: String!) { deleteCoupon(code: $code) { id deleted } }"

EBOOK = {"id": "p-ebook", "description": "E-book", "fiatAmount": "1200",
         "cryptoAmount": "12000000", "cryptoToken": "usdc", "metadata": {"format": "pdf"}}


async def run_catalog_admin_story(c: httpx.AsyncClient) -> None:
    """Create, reprice, discount and retire a product; every step visible to readers."""
    created = await graphql(c, CREATE_PRODUCT, {"input": {
        **EBOOK, "subscription": {"billingPeriod": "MONTH", "trialDays": 7}}}, BEARER)
    assert "errors" not in created, created
    product = created["data"]["createProduct"]
    assert product["effectiveCryptoPrice"]["atomic"] == "12000000"
    assert (product["cryptoToken"], product["metadata"]) == ("USDC", {"format": "pdf"})
    assert product["subscription"] == {"billingPeriod": "month", "trialDays": 7}
    assert product["createdAt"].endswith("Z")
    duplicate = await graphql(c, CREATE_PRODUCT, {"input": EBOOK}, BEARER)
    assert codes(duplicate) == ["invalid_field"]

    listed = await graphql(c, "{ products { edges { node { id } } } }")
    assert {"node": {"id": "p-ebook"}} in listed["data"]["products"]["edges"]

    repriced = await graphql(c, UPDATE_PRODUCT, {"input": {**EBOOK, "cryptoAmount": "9990000"}},
                             BEARER)
    assert repriced["data"]["updateProduct"]["cryptoPrice"]["atomic"] == "9990000"
    rest = await c.post("/paywall/v1/quote", json={"resource": "p-ebook"})
    quote = await graphql(c, '{ quote(resource: "p-ebook") { cryptoPrice { original '
                             '{ atomic } } x402 { maxAmountRequired } } }')
    assert quote["data"]["quote"]["cryptoPrice"]["original"]["atomic"] == "9990000"
    assert quote["data"]["quote"]["x402"]["maxAmountRequired"] == \
        rest.json()["accepts"][0]["maxAmountRequired"]

    coupon = await graphql(c, CREATE_COUPON, {"input": {
        "code": "EBOOK20", "discountType": "PERCENTAGE", "discountValue": "20",
        "scope": "SPECIFIC", "productIds": ["p-ebook"], "autoApply": True,
        "appliesAt": "CATALOG", "usageLimit": 100, "expiresAt": "2999-01-01T00:00:00Z"}},
        BEARER)
    assert "errors" not in coupon, coupon
    assert coupon["data"]["createCoupon"]["expiresAt"] == "2999-01-01T00:00:00Z"
    # The cached catalog saw the write: 9.99 - 20% = 7.992.
    discounted = await graphql(c, '{ product(id: "p-ebook") { effectiveCryptoPrice { atomic }'
                                  ' cryptoCouponCodes } }')
    assert discounted["data"]["product"] == {"effectiveCryptoPrice": {"atomic": "7992000"},
                                             "cryptoCouponCodes": ["EBOOK20"]}

    updated = await graphql(c, UPDATE_COUPON, {"input": {
        "code": "EBOOK20", "discountType": "FIXED", "discountValue": "1.5", "currency": "USD",
        "scope": "SPECIFIC", "productIds": ["p-ebook"], "autoApply": True,
        "appliesAt": "CATALOG"}}, BEARER)
    assert "errors" not in updated, updated
    assert updated["data"]["updateCoupon"]["discountType"] == "FIXED"
    after = await graphql(c, '{ product(id: "p-ebook") { effectiveCryptoPrice { atomic } } }')
    assert after["data"]["product"]["effectiveCryptoPrice"]["atomic"] == "8490000"
    missing = await graphql(c, UPDATE_COUPON, {"input": {
        "code": "NOPE", "discountType": "PERCENTAGE", "discountValue": "5"}}, BEARER)
    assert codes(missing) == ["coupon_not_found"]

    gone = await graphql(c, DELETE_COUPON, {"code": "EBOOK20"}, BEARER)
    assert gone["data"]["deleteCoupon"] == {"id": "EBOOK20", "deleted": True}
    active = await graphql(c, COUPONS, {"all": False}, BEARER)
    assert "EBOOK20" not in {e["node"]["code"] for e in active["data"]["coupons"]["edges"]}
    kept = await graphql(c, COUPONS, {"all": True}, BEARER)
    retired = [e["node"] for e in kept["data"]["coupons"]["edges"]
               if e["node"]["code"] == "EBOOK20"]
    assert retired and retired[0]["active"] is False

    deleted = await graphql(c, DELETE_PRODUCT, {"id": "p-ebook"}, BEARER)
    assert deleted["data"]["deleteProduct"] == {"id": "p-ebook", "deleted": True}
    after_delete = await graphql(c, '{ product(id: "p-ebook") { id } }')
    assert codes(after_delete) == ["product_not_found"]
    assert (await c.post("/paywall/v1/quote", json={"resource": "p-ebook"})).status_code == 404
    twice = await graphql(c, DELETE_PRODUCT, {"id": "never"}, BEARER)
    assert codes(twice) == ["product_not_found"]

    revived = await graphql(c, UPDATE_PRODUCT, {"input": {**EBOOK, "active": True}}, BEARER)
    assert revived["data"]["updateProduct"]["active"] is True
    inactive = await graphql(c, UPDATE_PRODUCT, {"input": {**EBOOK, "active": False}}, BEARER)
    assert inactive["data"]["updateProduct"]["effectiveCryptoPrice"] is None


async def test_admin_catalog_writes_on_the_memory_store(client: httpx.AsyncClient) -> None:
    await run_catalog_admin_story(client)


async def test_admin_catalog_writes_on_sqlite(db_client: httpx.AsyncClient) -> None:
    await run_catalog_admin_story(db_client)


@pytest.fixture
def used_coupon_yaml(catalog_yaml: str, tmp_path: Path) -> str:
    """conftest's catalog plus a coupon used 3 times out of 10."""
    path = tmp_path / "used.yaml"
    path.write_text(Path(catalog_yaml).read_text() + """
    USED:
      discount_type: percentage
      discount_value: 5
      usage_limit: 10
      usage_count: 3
""")
    return str(path)


async def test_update_coupon_keeps_the_usage_count(used_coupon_yaml: str) -> None:
    cfg = config_from({**YAML_SOURCES, **ADMIN_ENV}, used_coupon_yaml)
    async with client_for(create_app(cfg, store=memory_store())) as c:
        body = await graphql(c, UPDATE_COUPON, {"input": {
            "code": "USED", "discountType": "PERCENTAGE", "discountValue": "7",
            "usageLimit": 20}}, BEARER)
    coupon = body["data"]["updateCoupon"]
    assert (coupon["usageCount"], coupon["usageLimit"], coupon["discountValue"]) == (3, 20, "7")


async def test_admin_mutations_without_credentials_write_nothing(
    client: httpx.AsyncClient,
) -> None:
    for query, variables in ((CREATE_PRODUCT, {"input": EBOOK}),
                             (DELETE_PRODUCT, {"id": "p-article"}),
                             (DELETE_COUPON, {"code": "SAVE10"})):
        body = await graphql(client, query, variables)
        assert codes(body) == ["unauthorized"]
        assert all(value is None for value in body["data"].values())
    still = await graphql(client, '{ product(id: "p-article") { cryptoCouponCodes } }')
    assert still["data"]["product"]["cryptoCouponCodes"] == ["SAVE10"]
    assert codes(await graphql(client, '{ product(id: "p-ebook") { id } }')) == \
        ["product_not_found"]


@pytest.mark.parametrize(("change", "field"), [
    ({"id": "x" * 256}, "id"),
    ({"id": " padded"}, "id"),
    ({"fiatAmount": "-1"}, "fiatAmount"),
    ({"cryptoAmount": "1.5"}, "cryptoAmount"),
    ({"cryptoAmount": "99999999999999999999"}, "cryptoAmount"),
    ({"fiatCurrency": "usdc"}, "fiatCurrency"),
    ({"cryptoToken": "DOGE"}, "cryptoToken"),
    ({"cryptoAccount": "not-base58!"}, "cryptoAccount"),
    ({"fiatAmount": None, "cryptoAmount": None}, "fiatAmount"),
    ({"metadata": {"n": 1}}, "metadata"),
    ({"metadata": ["a"]}, "metadata"),
    ({"description": "d" * 1001}, "description"),
    ({"subscription": {"billingPeriod": "MONTH", "billingInterval": 0}},
     "subscription.billingInterval"),
])
async def test_product_input_is_validated(client: httpx.AsyncClient, change: dict[str, Any],
                                          field: str) -> None:
    body = await graphql(client, CREATE_PRODUCT, {"input": {**EBOOK, **change}}, BEARER)
    assert body["data"]["createProduct"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "invalid_field"
    assert error["extensions"]["details"] == {"field": field}


VALID_COUPON = {"code": "NEW10", "discountType": "PERCENTAGE", "discountValue": "10"}


@pytest.mark.parametrize(("change", "field"), [
    ({"discountValue": "100.01"}, "discountValue"),
    ({"discountValue": "0"}, "discountValue"),
    ({"discountType": "FIXED", "discountValue": "0"}, "discountValue"),
    ({"discountValue": "-1"}, "discountValue"),
    ({"discountType": "FIXED", "discountValue": "-0.5"}, "discountValue"),
    ({"discountValue": "NaN"}, "discountValue"),
    ({"code": "has space"}, "code"),
    ({"code": "C" * 129}, "code"),
    ({"currency": "XYZ"}, "currency"),
    ({"scope": "SPECIFIC"}, "productIds"),
    ({"scope": "SPECIFIC", "productIds": [""]}, "productIds[0]"),
    ({"usageLimit": -1}, "usageLimit"),
    ({"startsAt": "2030-01-01T00:00:00Z", "expiresAt": "2029-01-01T00:00:00Z"}, "expiresAt"),
])
async def test_coupon_input_is_validated(client: httpx.AsyncClient, change: dict[str, Any],
                                         field: str) -> None:
    body = await graphql(client, CREATE_COUPON, {"input": {**VALID_COUPON, **change}}, BEARER)
    assert body["data"]["createCoupon"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] in ("invalid_field", "missing_field")
    assert error["extensions"]["details"] == {"field": field}


async def test_malformed_scalars_are_invalid_field(client: httpx.AsyncClient) -> None:
    body = await graphql(client, CREATE_COUPON, {"input": {
        **VALID_COUPON, "expiresAt": "next tuesday"}}, BEARER)
    assert codes(body) == ["invalid_field"] and body["data"] is None
    body = await graphql(client, CREATE_COUPON, {"input": {
        **VALID_COUPON, "discountValue": "ten"}}, BEARER)
    assert codes(body) == ["invalid_field"]


# --- limits, errors, transport ---------------------------------------------------------------


async def test_depth_limit_rejects_deep_documents(client: httpx.AsyncClient) -> None:
    deep = "{ products " + "{ edges " * MAX_DEPTH + "{ id }" + " }" * (MAX_DEPTH + 1)
    body = await graphql(client, deep)
    assert body["data"] is None
    assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"])
    assert set(codes(body)) == {"invalid_field"}


async def test_token_limit_rejects_huge_documents(client: httpx.AsyncClient) -> None:
    huge = "{ products { " + "totalCount " * MAX_TOKENS + "} }"
    body = await graphql(client, huge)
    assert body["data"] is None and codes(body) == ["invalid_field"]
    assert f"more than {MAX_TOKENS} tokens" in body["errors"][0]["message"]


async def test_alias_limit_rejects_alias_amplification(client: httpx.AsyncClient) -> None:
    ok = " ".join(f"a{i}: product(id: \"p-video\") {{ id }}" for i in range(MAX_ALIASES))
    assert "errors" not in await graphql(client, "{ " + ok + " }")
    many = ok + ' extra: product(id: "p-video") { id }'
    body = await graphql(client, "{ " + many + " }")
    assert body["data"] is None and codes(body) == ["invalid_field"]
    assert f"Allowed: {MAX_ALIASES}" in body["errors"][0]["message"]


async def test_syntax_and_unknown_fields_are_invalid_field(client: httpx.AsyncClient) -> None:
    assert codes(await graphql(client, "{ products { ")) == ["invalid_field"]
    assert codes(await graphql(client, "{ secrets }")) == ["invalid_field"]


async def test_an_unexpected_exception_is_masked_and_logged(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(self: Catalog, tenant: str) -> Any:
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(Catalog, "snapshot", broken)
    with caplog.at_level(logging.ERROR, logger="cedros_pay.graphql"):
        body = await graphql(client, "{ products { totalCount } }")
    assert body["data"]["products"] is None
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "internal_error", "retryable": False}
    assert "secret" not in str(body)
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret" in str(logged[0].exc_info[1])


async def test_product_loads_are_batched_and_cached_per_request(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = Catalog.get

    async def counting(self: Catalog, tenant: str, product_id: str) -> ProductView:
        calls.append(product_id)
        return await original(self, tenant, product_id)

    monkeypatch.setattr(Catalog, "get", counting)
    cart = (await graphql(client, CART_QUOTE, {"input": {"items": [
        {"resource": "p-article"}, {"resource": "p-video"}, {"resource": "p-article"},
        {"resource": "p-video"}]}}))["data"]["createCartQuote"]
    assert sorted(calls) == ["p-article", "p-video"]  # four lines, two products

    calls.clear()
    body = await graphql(client, """query($id: String!) {
        a: product(id: "p-article") { id } b: product(id: "p-article") { id }
        cart(id: $id) { items { product { id } } } }""", {"id": cart["cartId"]})
    assert len(body["data"]["cart"]["items"]) == 4
    assert sorted(calls) == ["p-article", "p-video"]  # six product fields, two loads


async def test_graphiql_is_served_for_browsers(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    via_get = await client.get("/graphql", params={"query": "{ products { totalCount } }"})
    assert via_get.json() == {"data": {"products": {"totalCount": 3}}}


async def test_mutations_are_refused_over_get(client: httpx.AsyncClient) -> None:
    resp = await client.get("/graphql", params={
        "query": 'mutation { deleteCoupon(code: "SAVE10") { id } }'})
    assert resp.status_code == 400
    assert "not allowed" in resp.text.lower()


async def test_graphql_follows_the_route_prefix(catalog_yaml: str) -> None:
    cfg = config_from({**YAML_SOURCES, "CEDROS_ROUTE_PREFIX": "/api"}, catalog_yaml)
    app: CedrosApp = create_app(cfg, store=memory_store())
    async with client_for(app) as c:
        moved = await c.post("/api/graphql", json={"query": "{ products { totalCount } }"})
        gone = await c.post("/graphql", json={"query": "{ products { totalCount } }"})
    assert moved.json()["data"]["products"]["totalCount"] == 3
    assert gone.status_code == 404


async def test_a_body_over_the_limit_is_refused_413_before_it_is_parsed(
        client: httpx.AsyncClient) -> None:
    padded = "{ products(first: 1) { edges { node { id } } } }" + " " * (MAX_BODY_BYTES - 200)
    fits = await client.post("/graphql", json={"query": padded})
    assert fits.status_code == 200 and "errors" not in fits.json()  # whitespace is no token

    over = "{ products(first: 1) { edges { node { id } } } }" + " " * MAX_BODY_BYTES
    declared = await client.post("/graphql", json={"query": over})
    assert declared.status_code == 413
    assert codes(declared.json()) == ["invalid_field"]
    assert declared.json()["errors"][0]["extensions"]["details"] == {"field": "body"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: stopped while streaming
        yield b'{"query": "{ products(first: 1) { edges { node { id } } } }'
        for _ in range(MAX_BODY_BYTES // 4096 + 1):
            yield b" " * 4096
        yield b'"}'

    streamed = await client.post("/graphql", content=chunks(),
                                 headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert codes(streamed.json()) == ["invalid_field"]
    multipart = await client.post("/graphql", files={"operations": ("o", b"x" * (
        MAX_BODY_BYTES + 1))})  # whatever the content type
    assert multipart.status_code == 413
