"""What is loaded: Cedros Pay's REST and GraphQL endpoints and the baseline, each with a
sanity check.

The GraphQL listing runs twice: on the server as configured (`graphql`: its answer kept
with the catalog snapshot) and on a second Cedros Pay server with `graphql.result_cache`
off (`graphql-nocache`: every request executed). The admin listing sends the Bearer admin
key the bench servers are configured with (a signed `admin:<nonce>` message is single-use,
so it cannot be repeated under load); the bench database holds `SEEDED_PAYMENTS` payments.

Before any load, every target gets one request whose status and body are checked, so a
broken endpoint (or a GraphQL schema without `products`) is skipped with a reason
instead of being measured answering errors quickly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError

GRAPHQL_QUERY = (
    "{ products(first: 10) { edges { node { id "
    "effectiveCryptoPrice { atomic asset display } "
    "effectiveFiatPrice { atomic asset display } } } } }"
)
PAYMENTS_QUERY = (
    "{ payments(first: 20) { edges { cursor node { signature resource wallet method paidAt "
    "amount { atomic asset display } } } pageInfo { hasNextPage endCursor } "
    "totals { asset count amount { atomic display } } } }"
)
QUOTE_MUTATION = (
    "mutation($input: CartQuoteInput!) { createCartQuote(input: $input) { cartId "
    "expiresAt total { atomic asset display } items { resource quantity } } }"
)
QUOTE_INPUT = {"items": [{"resource": "demo-article", "quantity": 1},
                         {"resource": "demo-ebook", "quantity": 2}]}
ADMIN_API_KEY = "bench-admin-key-0123456789abcdef"  # the bench servers' admin.api_keys
SEEDED_PAYMENTS = 200


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _check_baseline(body: bytes) -> str | None:
    doc = _json(body)
    ok = isinstance(doc, dict) and len(doc.get("items") or []) == 10
    return None if ok else "expected a document with ten items"


def _check_quote(body: bytes) -> str | None:
    doc = _json(body)
    ok = isinstance(doc, dict) and bool(doc.get("accepts"))
    return None if ok else "expected an x402 body with `accepts`"


def _check_products(body: bytes) -> str | None:
    doc = _json(body)
    ok = isinstance(doc, dict) and bool(doc.get("products"))
    return None if ok else "expected a non-empty `products` list"


def _graphql_data(body: bytes) -> tuple[dict[str, Any], str | None]:
    doc = _json(body)
    if not isinstance(doc, dict):
        return {}, "not a GraphQL JSON response"
    if doc.get("errors"):
        first = doc["errors"][0]
        message = first.get("message", first) if isinstance(first, dict) else first
        return {}, f"GraphQL error: {message}"
    return doc.get("data") or {}, None


def _check_graphql(body: bytes) -> str | None:
    data, problem = _graphql_data(body)
    edges = (data.get("products") or {}).get("edges")
    return problem or (None if edges else "no `data.products.edges` in the response")


def _check_payments(body: bytes) -> str | None:
    data, problem = _graphql_data(body)
    listing = data.get("payments") or {}
    full = len(listing.get("edges") or []) == 20 and bool(listing.get("totals"))
    return problem or (None if full else "expected 20 payments with totals")


def _check_cart_quote(body: bytes) -> str | None:
    data, problem = _graphql_data(body)
    cart = data.get("createCartQuote") or {}
    ok = str(cart.get("cartId", "")).startswith("cart_")
    return problem or (None if ok else "expected a `cart_` id from createCartQuote")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    server: str  # "cedros", "cedros-nocache" (graphql.result_cache off) or "baseline"
    method: str
    path: str
    expect_status: int
    check: Callable[[bytes], str | None]  # what is wrong with a response body, if anything
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # besides Content-Type


TARGETS: tuple[Target, ...] = (
    Target("baseline", "baseline (bare Starlette, fixed 4 KB JSON)", "baseline", "GET", "/",
           200, _check_baseline),
    Target("quote", "POST /paywall/v1/quote", "cedros", "POST", "/paywall/v1/quote", 402,
           _check_quote, json.dumps({"resource": "demo-article"})),
    Target("products", "GET /paywall/v1/products", "cedros", "GET", "/paywall/v1/products",
           200, _check_products),
    Target("graphql", "POST /graphql products(first: 10)", "cedros", "POST", "/graphql", 200,
           _check_graphql, json.dumps({"query": GRAPHQL_QUERY})),
    Target("graphql-nocache", "POST /graphql products(first: 10), result cache off",
           "cedros-nocache", "POST", "/graphql", 200, _check_graphql,
           json.dumps({"query": GRAPHQL_QUERY})),
    Target("graphql-payments", "POST /graphql admin payments(first: 20) + totals", "cedros",
           "POST", "/graphql", 200, _check_payments, json.dumps({"query": PAYMENTS_QUERY}),
           (("Authorization", f"Bearer {ADMIN_API_KEY}"),)),
    Target("graphql-quote", "POST /graphql createCartQuote (2 items)", "cedros", "POST",
           "/graphql", 200, _check_cart_quote,
           json.dumps({"query": QUOTE_MUTATION, "variables": {"input": QUOTE_INPUT}})),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)


def select_targets(only: str) -> list[Target]:
    """The targets named in a comma-separated list (all when empty), plus the baseline,
    plus GET /products when a GraphQL listing is named (its verdict is a ratio to it)."""
    if not only:
        return list(TARGETS)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    unknown = wanted - set(TARGET_NAMES)
    if unknown:
        raise BenchError(f"unknown target(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(TARGET_NAMES)}")
    wanted.add("baseline")
    if wanted & {"graphql", "graphql-nocache"}:
        wanted.add("products")
    return [t for t in TARGETS if t.name in wanted]
