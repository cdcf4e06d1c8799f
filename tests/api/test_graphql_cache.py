"""GraphQL answers kept with the catalog snapshot, and the direct execution path.

A catalog-only query's answer is kept per document, variables and admin-ness in the
tenant's snapshot, and goes with it: an edit to the catalog is in the next answer. The
direct path (prepared documents, plans) must answer byte for byte what Strawberry's view
answers; a GET takes the view's path, so each document is sent both ways.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from api.conftest import client_for, config_from
from api.test_graphql import (
    ADMIN_ENV,
    BEARER,
    CREATE_PRODUCT,
    EBOOK,
    MONEY,
    UPDATE_PRODUCT,
    YAML_SOURCES,
    graphql,
)

from cedros_pay.app import CedrosApp, create_app
from cedros_pay.config.models import GraphQLConfig, RateLimitConfig, RateLimitRule
from cedros_pay.resolvers.catalog_snapshot import CatalogSnapshot
from cedros_pay.storage.store import memory_store

LISTING = f"{{ products {{ totalCount edges {{ node {{ id effectiveCryptoPrice {MONEY} }} }} }} }}"
PAGE = "query($first: Int) { products(first: $first) { edges { node { id } } } }"


def app_for(catalog_yaml: str | None, *, result_cache: bool = True) -> CedrosApp:
    sources = YAML_SOURCES if catalog_yaml else {}
    cfg = config_from({**sources, **ADMIN_ENV}, yaml_path=catalog_yaml)
    # The comparison sends a few hundred requests from one client.
    unlimited = RateLimitRule(enabled=False)
    cfg = cfg.model_copy(update={
        "graphql": GraphQLConfig(result_cache=result_cache),
        "rate_limit": RateLimitConfig(**{"global": unlimited}, per_wallet=unlimited,
                                      per_ip=unlimited)})
    return create_app(cfg, store=memory_store())


@pytest.fixture
async def cached() -> AsyncIterator[tuple[CedrosApp, httpx.AsyncClient]]:
    """An app whose catalog lives in the (memory) store, so admin writes change it."""
    app = app_for(None)
    async with client_for(app) as c:
        yield app, c


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per execution of the `products` resolver (it renders the listing)."""
    calls: list[str] = []
    original = CatalogSnapshot.rendered

    def counting(self: CatalogSnapshot, render: Any) -> Any:
        calls.append(self.tenant)
        return original(self, render)

    monkeypatch.setattr(CatalogSnapshot, "rendered", counting)
    return calls


def ebook_price(body: dict[str, Any]) -> str:
    nodes = {e["node"]["id"]: e["node"] for e in body["data"]["products"]["edges"]}
    atomic: str = nodes["p-ebook"]["effectiveCryptoPrice"]["atomic"]
    return atomic


async def test_a_product_edit_is_in_the_next_listing(
    cached: tuple[CedrosApp, httpx.AsyncClient], executions: list[str],
) -> None:
    app, c = cached
    assert "errors" not in await graphql(c, CREATE_PRODUCT, {"input": EBOOK}, BEARER)
    first = await graphql(c, LISTING)
    assert ebook_price(first) == "12000000"
    assert await graphql(c, LISTING) == first
    assert len(executions) == 1  # the second answer was the kept one

    repriced = await graphql(c, UPDATE_PRODUCT, {"input": {**EBOOK, "cryptoAmount": "9990000"}},
                             BEARER)
    assert "errors" not in repriced
    assert ebook_price(await graphql(c, LISTING)) == "9990000"
    assert len(executions) == 2

    # A write through the catalog itself (not GraphQL) drops the kept answer too.
    services = await app.start()
    product = await services.catalog.get("default", "p-ebook")
    await services.catalog.update_product(replace(product.product, crypto_amount=7_000_000))
    assert ebook_price(await graphql(c, LISTING)) == "7000000"
    assert len(executions) == 3


async def test_answers_are_kept_per_variables_and_tenant(
    cached: tuple[CedrosApp, httpx.AsyncClient], executions: list[str],
) -> None:
    app, c = cached
    for i in range(3):
        await graphql(c, CREATE_PRODUCT, {"input": {**EBOOK, "id": f"p-{i}"}}, BEARER)
    one = await graphql(c, PAGE, {"first": 1})
    two = await graphql(c, PAGE, {"first": 2})
    assert len(one["data"]["products"]["edges"]) == 1
    assert len(two["data"]["products"]["edges"]) == 2
    assert await graphql(c, PAGE, {"first": 1}) == one
    assert len(executions) == 2

    services = await app.start()
    await services.catalog.create_product(replace(
        (await services.catalog.get("default", "p-0")).product, id="p-acme", tenant_id="acme"))
    acme = await graphql(c, PAGE, {"first": 1}, {"X-Tenant-ID": "acme"})
    assert acme["data"]["products"]["edges"] == [{"node": {"id": "p-acme"}}]
    assert executions[-1] == "acme"

    # An admin's listing is the public one, kept apart all the same.
    assert await graphql(c, PAGE, {"first": 1}, BEARER) == one
    assert len(executions) == 4


async def test_only_catalog_only_queries_are_kept(
    cached: tuple[CedrosApp, httpx.AsyncClient], executions: list[str],
) -> None:
    _, c = cached
    await graphql(c, CREATE_PRODUCT, {"input": EBOOK}, BEARER)
    mixed = '{ products { totalCount } quote(resource: "p-ebook") { resource } }'
    for _ in range(2):
        body = await graphql(c, mixed)
        assert "errors" not in body and body["data"]["quote"]["resource"] == "p-ebook"
    assert len(executions) == 2
    refused = "{ products(first: 1000) { totalCount } }"  # an answer with errors
    for _ in range(2):
        assert (await graphql(c, refused))["errors"]
    assert len(executions) == 4


async def test_with_the_result_cache_off_every_listing_is_executed(
    catalog_yaml: str, executions: list[str],
) -> None:
    async with client_for(app_for(catalog_yaml, result_cache=False)) as c:
        answers = [await graphql(c, LISTING) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["data"]["products"]["totalCount"] == 3
    assert len(executions) == 3


# --- the direct path against Strawberry's view ----------------------------------------------

MONEY_FIELDS = ("atomic", "decimals", "asset", "display", "__typename")
PRODUCT_LEAVES = ("id", "description", "active", "fiatCurrency", "stripePriceId",
                  "cryptoToken", "fiatCouponCodes", "cryptoCouponCodes",
                  "fiatDiscountPercent", "cryptoDiscountPercent", "metadata", "createdAt",
                  "updatedAt", "__typename")
PRODUCT_MONEY = ("fiatPrice", "effectiveFiatPrice", "cryptoPrice", "effectiveCryptoPrice")


def random_selection(rng: random.Random, names: tuple[str, ...], least: int = 1) -> list[str]:
    chosen = rng.sample(names, rng.randint(least, len(names)))
    return [f"a{i}: {n}" if rng.random() < 0.2 else n for i, n in enumerate(chosen)]


def random_listing(rng: random.Random) -> str:
    node = random_selection(rng, PRODUCT_LEAVES)
    for money in rng.sample(PRODUCT_MONEY, rng.randint(0, len(PRODUCT_MONEY))):
        node.append(f"{money} {{ {' '.join(random_selection(rng, MONEY_FIELDS))} }}")
    if rng.random() < 0.3:
        node.append("subscription { billingPeriod trialDays __typename }")
    rng.shuffle(node)
    edge = [f"node {{ {' '.join(node)} }}"] + (["cursor"] if rng.random() < 0.5 else [])
    parts = [f"edges {{ {' '.join(edge)} }}"]
    if rng.random() < 0.5:
        parts.append("pageInfo { hasNextPage hasPreviousPage startCursor endCursor }")
    if rng.random() < 0.5:
        parts.append("totalCount")
    first = rng.choice(["", "(first: 2)", "(first: 0)", "(first: 101)"])
    return f"{{ products{first} {{ {' '.join(parts)} }} }}"


FIXED_DOCUMENTS = [
    '{ product(id: "p-article") { id effectiveFiatPrice { display } } }',
    '{ product(id: "nope") { id } products { totalCount } }',
    '{ quote(resource: "p-article") { resource cryptoPrice { effective { atomic } } } }',
    "{ payments(first: 1) { totalCount } }",  # admin field, no credentials
    '{ products(after: "bm90LWEtY3Vyc29y") { totalCount } }',
    "{ products { edges { node { id } } } } query Other { __typename }",  # no name given
    "{ products { edges { node { ...F } } } } fragment F on Product { id cryptoToken }",
    "query($n: Int = 1) { products(first: $n) { edges { node { id @include(if: true) } } } }",
]


async def both_ways(c: httpx.AsyncClient, query: str,
                    variables: dict[str, Any] | None = None) -> tuple[httpx.Response, ...]:
    post = await c.post("/graphql", json={"query": query, "variables": variables})
    params = {"query": query, **({"variables": json.dumps(variables)} if variables else {})}
    get = await c.get("/graphql", params=params)
    return post, get


@pytest.mark.parametrize("result_cache", [True, False])
async def test_the_direct_path_answers_as_strawberrys_view(
    catalog_yaml: str, result_cache: bool,
) -> None:
    rng = random.Random(1607)
    documents = [*FIXED_DOCUMENTS, *(random_listing(rng) for _ in range(60))]
    async with client_for(app_for(catalog_yaml, result_cache=result_cache)) as c:
        for query in documents:
            for _ in range(2):  # the second POST may be the kept answer
                post, get = await both_ways(c, query)
                assert post.status_code == get.status_code == 200, query
                assert post.headers["content-type"] == get.headers["content-type"]
                assert post.content == get.content, query
        post, get = await both_ways(c, PAGE, {"first": "two"})  # variable coercion
        assert post.content == get.content and b"invalid_field" in post.content


async def test_requests_the_direct_path_does_not_take_keep_the_views_answers(
    catalog_yaml: str,
) -> None:
    async with client_for(app_for(catalog_yaml)) as c:
        bad_json = await c.post("/graphql", content=b"{nope",
                                headers={"content-type": "application/json"})
        assert (bad_json.status_code, bad_json.text) == (400,
                                                         "Unable to parse request body as JSON")
        no_query = await c.post("/graphql", json={"variables": {}})
        assert no_query.status_code == 400
        assert no_query.text == "No GraphQL query found in the request"
        wrong_type = await c.post("/graphql", json={"query": 1})
        assert wrong_type.status_code == 400
        syntax = await graphql(c, "{ products { ")
        assert syntax["data"] is None
        assert syntax["errors"][0]["extensions"]["code"] == "invalid_field"
        batch = await c.post("/graphql", json=[{"query": LISTING}])
        assert batch.status_code == 400
