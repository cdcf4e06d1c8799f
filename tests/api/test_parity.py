"""REST and GraphQL price alike: one resolver behind both (DESIGN §2 rule 2).

For each coupon configuration of the table, the same app answers GET /products,
POST /quote and POST /cart/quote over REST, and `products`, `quote` and
`createCartQuote` over GraphQL; every amount, in atomic units, must be equal. Each case
also says whether it should move any price from the coupon-free baseline, so a case
cannot pass by testing nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from api.conftest import client_for, config_from

from cedros_pay.app import create_app
from cedros_pay.core.assets import get_asset
from cedros_pay.storage.store import memory_store

PRODUCTS: dict[str, dict[str, Any]] = {
    "p-usd": {"description": "Dollar item", "fiat_amount_cents": 1999, "fiat_currency": "usd",
              "crypto_atomic_amount": 19_990_000, "crypto_token": "USDC"},
    "p-cheap": {"description": "Cheap item", "fiat_amount_cents": 50, "fiat_currency": "usd",
                "crypto_atomic_amount": 500_000, "crypto_token": "USDC"},
    "p-odd": {"description": "Sub-cent price", "fiat_amount_cents": 333,
              "fiat_currency": "usd", "crypto_atomic_amount": 3_333_333, "crypto_token": "USDC"},
    "p-crypto": {"description": "Crypto only", "crypto_atomic_amount": 1_234_567,
                 "crypto_token": "USDC"},
    "p-card": {"description": "Card only", "fiat_amount_cents": 1000, "fiat_currency": "usd",
               "stripe_price_id": "price_card"},
}
CART = [("p-usd", 2), ("p-odd", 1), ("p-crypto", 3), ("p-cheap", 1)]

PCT = {"discount_type": "percentage"}
FIX = {"discount_type": "fixed"}
AUTO_CATALOG = {"auto_apply": True, "applies_at": "catalog"}
AUTO_CHECKOUT = {"auto_apply": True, "applies_at": "checkout"}


@dataclass(frozen=True)
class Case:
    name: str
    coupons: dict[str, dict[str, Any]]
    code: str | None = None  # the code the customer types (quote and cart)
    moves_prices: bool | None = True  # None: may or may not, by rounding
    products: dict[str, dict[str, Any]] = field(default_factory=lambda: PRODUCTS)


CASES = [
    Case("percentage catalog auto, all products",
         {"C10": {**PCT, "discount_value": 10, **AUTO_CATALOG}}),
    Case("percentage catalog auto, specific product",
         {"C10": {**PCT, "discount_value": 10, **AUTO_CATALOG, "scope": "specific",
                  "product_ids": ["p-usd"]}}),
    Case("percentage checkout auto", {"K15": {**PCT, "discount_value": 15, **AUTO_CHECKOUT}}),
    Case("percentage checkout manual",
         {"K20": {**PCT, "discount_value": 20, "applies_at": "checkout"}}, code="K20"),
    Case("percentage catalog manual, specific product",
         {"C25": {**PCT, "discount_value": 25, "applies_at": "catalog", "scope": "specific",
                  "product_ids": ["p-odd"]}}, code="C25"),
    Case("percentage catalog manual, all products",
         {"C12": {**PCT, "discount_value": 12, "applies_at": "catalog"}}, code="C12"),
    Case("fixed USD checkout auto",
         {"F1": {**FIX, "discount_value": 1, "currency": "usd", **AUTO_CHECKOUT}}),
    Case("fixed USD catalog auto, specific products",
         {"F1": {**FIX, "discount_value": 1, "currency": "usd", **AUTO_CATALOG,
                 "scope": "specific", "product_ids": ["p-usd", "p-cheap"]}}),
    Case("fixed USDC (USD-pegged) checkout manual",
         {"F2": {**FIX, "discount_value": 2, "currency": "USDC", "applies_at": "checkout"}},
         code="F2"),
    Case("fixed larger than the price, catalog auto",
         {"BIG": {**FIX, "discount_value": 100, "currency": "usd", **AUTO_CATALOG}}),
    Case("fixed larger than the price, checkout manual",
         {"BIG": {**FIX, "discount_value": 100, "currency": "usd", "applies_at": "checkout"}},
         code="BIG"),
    Case("stripe-only percentage catalog auto",
         {"S10": {**PCT, "discount_value": 10, **AUTO_CATALOG, "payment_method": "stripe"}}),
    Case("x402-only percentage catalog auto",
         {"X10": {**PCT, "discount_value": 10, **AUTO_CATALOG, "payment_method": "x402"}}),
    Case("x402-only fixed checkout auto",
         {"X05": {**FIX, "discount_value": 0.5, "currency": "usd", **AUTO_CHECKOUT,
                  "payment_method": "x402"}}),
    Case("stripe-only fixed checkout manual (no x402 effect)",
         {"S3": {**FIX, "discount_value": 3, "currency": "usd", "applies_at": "checkout",
                 "payment_method": "stripe"}}, code="S3", moves_prices=False),
    Case("usage limit reached",
         {"U30": {**PCT, "discount_value": 30, **AUTO_CATALOG, "usage_limit": 5,
                  "usage_count": 5}}, moves_prices=False),
    Case("usage limit with one use left",
         {"U30": {**PCT, "discount_value": 30, **AUTO_CATALOG, "usage_limit": 5,
                  "usage_count": 4}}),
    Case("expired",
         {"OLD": {**PCT, "discount_value": 30, **AUTO_CATALOG,
                  "expires_at": "2020-01-01T00:00:00Z"}}, moves_prices=False),
    Case("not started yet",
         {"NEW": {**PCT, "discount_value": 30, **AUTO_CATALOG,
                  "starts_at": "2999-01-01T00:00:00Z"}}, moves_prices=False),
    Case("inactive",
         {"OFF": {**PCT, "discount_value": 30, **AUTO_CATALOG, "active": False}},
         moves_prices=False),
    Case("expired manual code",
         {"OLDK": {**PCT, "discount_value": 30, "applies_at": "checkout",
                   "expires_at": "2020-01-01T00:00:00Z"}}, code="OLDK", moves_prices=False),
    Case("unknown manual code", {}, code="NOPE", moves_prices=False),
    Case("percentage with awkward rounding, checkout auto",
         {"R": {**PCT, "discount_value": 33.33, **AUTO_CHECKOUT}}),
    Case("100 percent catalog auto", {"FREE": {**PCT, "discount_value": 100, **AUTO_CATALOG}}),
    Case("sub-cent fixed checkout auto",
         {"TINY": {**FIX, "discount_value": 0.005, "currency": "usd", **AUTO_CHECKOUT}},
         moves_prices=None),
    Case("fixed in a non-pegged currency (EUR)",
         {"EUR": {**FIX, "discount_value": 1, "currency": "eur", **AUTO_CHECKOUT}},
         moves_prices=False),
    Case("fixed without currency on USDC",
         {"ANY": {**FIX, "discount_value": 1.25, **AUTO_CHECKOUT}}),
    Case("fixed x402 catalog, specific crypto-only product",
         {"CX": {**FIX, "discount_value": 0.234567, "currency": "usdc", **AUTO_CATALOG,
                 "scope": "specific", "product_ids": ["p-crypto"], "payment_method": "x402"}}),
    Case("manual code typed in lower case",
         {"LOWER10": {**PCT, "discount_value": 10, "applies_at": "checkout"}}, code="lower10"),
    Case("stacked: catalog auto, checkout auto and a manual code",
         {"C10": {**PCT, "discount_value": 10, **AUTO_CATALOG},
          "F1": {**FIX, "discount_value": 1, "currency": "usd", **AUTO_CHECKOUT},
          "K5": {**PCT, "discount_value": 5, "applies_at": "checkout"}}, code="K5"),
    Case("two checkout percentages multiply",
         {"A": {**PCT, "discount_value": 10, **AUTO_CHECKOUT},
          "B": {**PCT, "discount_value": 20, **AUTO_CHECKOUT}}),
]
BASELINE = Case("no coupons", {}, moves_prices=False)

Amounts = dict[str, object]


def atomic(major: float, asset_code: str) -> int:
    """REST's float back to atomic units; it must be exact (no rounding hidden here)."""
    scaled = Decimal(repr(major)).scaleb(get_asset(asset_code).decimals)
    assert scaled == scaled.to_integral_value(), (major, asset_code)
    return int(scaled)


def write_case(case: Case, directory: Path, name: str) -> str:
    path = directory / name
    path.write_text(yaml.safe_dump({
        "paywall": {"product_source": "yaml", "resources": case.products},
        "coupons": {"coupon_source": "yaml", "coupons": case.coupons},
    }))
    return str(path)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    param: Case = request.param
    return param


@pytest.fixture
def case_yaml(case: Case, tmp_path: Path) -> str:
    return write_case(case, tmp_path, "case.yaml")


@pytest.fixture
def baseline_yaml(tmp_path: Path) -> str:
    return write_case(BASELINE, tmp_path, "baseline.yaml")


async def graphql(client: httpx.AsyncClient, query: str,
                  variables: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/graphql", json={"query": query, "variables": variables})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def rest_amounts(client: httpx.AsyncClient, code: str | None) -> Amounts:
    out: Amounts = {}
    catalog = (await client.get("/paywall/v1/products")).json()
    for p in catalog["products"]:
        fiat, token = p["fiatCurrency"] or "usd", p["cryptoToken"] or "USDC"
        out[f"{p['id']} fiat"] = atomic(p["fiatAmount"], fiat)
        out[f"{p['id']} effective fiat"] = atomic(p["effectiveFiatAmount"], fiat)
        out[f"{p['id']} crypto"] = atomic(p["cryptoAmount"], token)
        out[f"{p['id']} effective crypto"] = atomic(p["effectiveCryptoAmount"], token)
        out[f"{p['id']} fiat coupons"] = p["stripeCouponCode"]
        out[f"{p['id']} crypto coupons"] = p["cryptoCouponCode"]
        quote = await client.post("/paywall/v1/quote", json={"resource": p["id"],
                                                             "couponCode": code})
        assert quote.status_code == 402, quote.text
        accepts = quote.json()["accepts"]
        out[f"{p['id']} quote"] = accepts[0]["maxAmountRequired"] if accepts else None
    cart = await client.post("/paywall/v1/cart/quote", json={
        "items": [{"resource": r, "quantity": q} for r, q in CART], "couponCode": code})
    assert cart.status_code == 200, cart.text
    body = cart.json()
    out["cart total"] = body["quote"]["maxAmountRequired"]
    out["cart total float"] = atomic(body["totalAmount"], "USDC")
    out["cart units"] = [atomic(i["priceAmount"], i["token"]) for i in body["items"]]
    out["cart originals"] = [atomic(i["originalPrice"], i["token"]) for i in body["items"]]
    out["cart coupons"] = body["metadata"].get("coupon_codes", "")
    return out


PRODUCTS_QUERY = """query { products(first: 100) { edges { node { id
    fiatPrice { atomic } effectiveFiatPrice { atomic } cryptoPrice { atomic }
    effectiveCryptoPrice { atomic } fiatCouponCodes cryptoCouponCodes } } } }"""
QUOTE_QUERY = """query($r: String!, $c: String) { quote(resource: $r, couponCode: $c) {
    x402 { maxAmountRequired amount { atomic } } } }"""
CART_MUTATION = """mutation($input: CartQuoteInput!) { createCartQuote(input: $input) {
    total { atomic } quote { maxAmountRequired } metadata
    items { unitPrice { atomic } originalUnitPrice { atomic } } } }"""


def _atomic(money: dict[str, str] | None) -> int:
    return int(money["atomic"]) if money else 0  # REST shows 0 for "no price"


async def graphql_amounts(client: httpx.AsyncClient, code: str | None) -> Amounts:
    out: Amounts = {}
    products = await graphql(client, PRODUCTS_QUERY, {})
    assert "errors" not in products, products
    for edge in products["data"]["products"]["edges"]:
        p = edge["node"]
        out[f"{p['id']} fiat"] = _atomic(p["fiatPrice"])
        out[f"{p['id']} effective fiat"] = _atomic(p["effectiveFiatPrice"])
        out[f"{p['id']} crypto"] = _atomic(p["cryptoPrice"])
        out[f"{p['id']} effective crypto"] = _atomic(p["effectiveCryptoPrice"])
        out[f"{p['id']} fiat coupons"] = ",".join(p["fiatCouponCodes"])
        out[f"{p['id']} crypto coupons"] = ",".join(p["cryptoCouponCodes"])
        quote = await graphql(client, QUOTE_QUERY, {"r": p["id"], "c": code})
        assert "errors" not in quote, quote
        x402 = quote["data"]["quote"]["x402"]
        if x402 is not None:
            assert x402["amount"]["atomic"] == x402["maxAmountRequired"]
        out[f"{p['id']} quote"] = x402["maxAmountRequired"] if x402 else None
    cart = await graphql(client, CART_MUTATION, {"input": {
        "items": [{"resource": r, "quantity": q} for r, q in CART], "couponCode": code}})
    assert "errors" not in cart, cart
    body = cart["data"]["createCartQuote"]
    out["cart total"] = body["quote"]["maxAmountRequired"]
    out["cart total float"] = int(body["total"]["atomic"])
    out["cart units"] = [int(i["unitPrice"]["atomic"]) for i in body["items"]]
    out["cart originals"] = [int(i["originalUnitPrice"]["atomic"]) for i in body["items"]]
    out["cart coupons"] = body["metadata"].get("coupon_codes", "")
    return out


async def both(yaml_path: str, code: str | None) -> tuple[Amounts, Amounts]:
    cfg = config_from({"CEDROS_PAYWALL_PRODUCT_SOURCE": "yaml", "COUPON_SOURCE": "yaml"},
                      yaml_path)
    async with client_for(create_app(cfg, store=memory_store())) as client:
        return await rest_amounts(client, code), await graphql_amounts(client, code)


@pytest.fixture
async def baseline(baseline_yaml: str) -> AsyncIterator[Amounts]:
    rest, gql = await both(baseline_yaml, None)
    assert rest == gql
    yield gql


def test_the_table_is_wide_enough() -> None:
    """At least 20 configurations, and every dimension the issue names is covered."""
    assert len(CASES) >= 20
    coupons = [c for case in CASES for c in case.coupons.values()]
    assert {c["discount_type"] for c in coupons} == {"percentage", "fixed"}
    assert {c.get("applies_at") for c in coupons} >= {"catalog", "checkout"}
    assert {c.get("auto_apply", False) for c in coupons} == {True, False}
    assert {c.get("scope", "all") for c in coupons} == {"all", "specific"}
    assert {c.get("payment_method", "") for c in coupons} == {"", "stripe", "x402"}
    assert any("usage_limit" in c for c in coupons)
    assert any("expires_at" in c for c in coupons)
    assert any(str(c.get("currency", "")).upper() == "USDC" for c in coupons)


async def test_rest_and_graphql_agree(case: Case, case_yaml: str, baseline: Amounts) -> None:
    rest, gql = await both(case_yaml, case.code)
    assert rest.keys() == gql.keys()
    for key in rest:
        assert rest[key] == gql[key], f"{case.name}: {key}: REST {rest[key]} != GraphQL {gql[key]}"
    assert gql["cart total"] == str(gql["cart total float"])
    if case.moves_prices is not None:
        moved = {k for k in gql if gql[k] != baseline[k] and "coupons" not in k}
        assert bool(moved) is case.moves_prices, (case.name, moved)
