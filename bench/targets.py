"""What is loaded: three Cedros Pay endpoints and the baseline, each with a sanity check.

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


def _check_graphql(body: bytes) -> str | None:
    doc = _json(body)
    if not isinstance(doc, dict):
        return "not a GraphQL JSON response"
    if doc.get("errors"):
        first = doc["errors"][0]
        message = first.get("message", first) if isinstance(first, dict) else first
        return f"GraphQL error: {message}"
    edges = ((doc.get("data") or {}).get("products") or {}).get("edges")
    return None if edges else "no `data.products.edges` in the response"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    server: str  # "cedros" or "baseline"
    method: str
    path: str
    expect_status: int
    check: Callable[[bytes], str | None]  # what is wrong with a response body, if anything
    body: str = ""


TARGETS: tuple[Target, ...] = (
    Target("baseline", "baseline (bare Starlette, fixed 4 KB JSON)", "baseline", "GET", "/",
           200, _check_baseline),
    Target("quote", "POST /paywall/v1/quote", "cedros", "POST", "/paywall/v1/quote", 402,
           _check_quote, json.dumps({"resource": "demo-article"})),
    Target("products", "GET /paywall/v1/products", "cedros", "GET", "/paywall/v1/products",
           200, _check_products),
    Target("graphql", "POST /graphql products(first: 10)", "cedros", "POST", "/graphql", 200,
           _check_graphql, json.dumps({"query": GRAPHQL_QUERY})),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)


def select_targets(only: str) -> list[Target]:
    """The targets named in a comma-separated list (all when empty), plus the baseline."""
    if not only:
        return list(TARGETS)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    unknown = wanted - set(TARGET_NAMES)
    if unknown:
        raise BenchError(f"unknown target(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(TARGET_NAMES)}")
    return [t for t in TARGETS if t.name in wanted or t.name == "baseline"]
