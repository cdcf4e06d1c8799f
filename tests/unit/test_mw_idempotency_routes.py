"""The Idempotency-Key routes come from the route table: every POST is either protected
or exempt for a stated reason, so a new money-moving POST cannot be forgotten."""

from __future__ import annotations

import pytest
from starlette.routing import BaseRoute, Route

from cedros_pay.bootstrap.infra import chain_options
from cedros_pay.config import Config
from cedros_pay.rest.endpoint import doc_of, endpoint
from cedros_pay.rest.middleware import idempotent_routes
from cedros_pay.rest.openapi import build_openapi
from cedros_pay.rest.routes import build_routes

# Money moves or a resource is created: a retry must not do it twice.
PROTECTED = {
    "/paywall/v1/cart/quote",  # creates a cart
    "/paywall/v1/cart/checkout",  # Stripe Checkout session for a cart
    "/paywall/v1/stripe-session",  # Stripe Checkout session for one product
    "/paywall/v1/subscription/stripe-session",
    "/paywall/v1/subscription/x402/activate",  # grants a period for a payment
    "/paywall/v1/subscription/change",  # Stripe plan change (prorated charge)
    "/paywall/v1/subscription/cancel",
    "/paywall/v1/subscription/reactivate",
    "/paywall/v1/refunds/request",  # creates a refund request
    "/paywall/v1/refunds/approve",  # the merchant pays it
    "/paywall/v1/refunds/deny",
    "/admin/refunds",  # opens a card refund (Stripe)
}

# POSTs without Idempotency-Key, and why.
EXEMPT = {
    "/resources/list": "reads the catalog (MCP)",
    "/paywall/v1/coupons/validate": "reads a coupon",
    "/paywall/v1/quote": "answers 402 with a price: nothing is created",
    "/paywall/v1/subscription/quote": "answers 402 with a price: nothing is cached",
    "/paywall/v1/subscription/portal": "a fresh portal URL each time, no state",
    "/paywall/v1/nonce": "a fresh admin nonce is the point of each call",
    "/paywall/v1/refunds/pending": "lists refunds",
    "/paywall/v1/verify": "the payment signature is the key: replay protection (spec 07)",
    "/paywall/{resource_id}": "the payment signature is the key: replay protection",
    "/paywall/v1/gasless-transaction": "builds an unsigned transaction, nothing is sent",
    "/webhook/stripe": "Stripe's event id is the key (processed once)",
    "/admin/webhooks/{webhook_id}/retry": "re-queues a delivery that carries its event id",
}


def post_paths(routes: list[BaseRoute]) -> set[str]:
    return {r.path for r in routes if isinstance(r, Route) and "POST" in (r.methods or ())}


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_every_post_route_is_protected_or_exempt_and_both_lists_name_real_routes(
        prefix: str) -> None:
    routes = build_routes(prefix)
    posts = post_paths(routes)
    protected = {path for method, path in idempotent_routes(routes) if method == "POST"}
    expected = {prefix + p for p in PROTECTED}
    exempt = {prefix + p for p in EXEMPT}
    assert protected == expected, "the routes that declare Idempotency-Key changed"
    assert expected <= posts, f"protected but not routes: {expected - posts}"
    assert exempt <= posts, f"exempt but not routes: {exempt - posts}"
    assert not expected & exempt
    # The Stripe webhook is also served at the root when there is a prefix.
    unclassified = posts - expected - exempt - {"/webhook/stripe"}
    assert not unclassified, f"POST routes neither protected nor exempt: {unclassified}"


def test_the_running_chain_protects_exactly_the_declared_routes() -> None:
    options = chain_options(Config())
    assert options.idempotency is not None
    assert options.idempotency.routes == idempotent_routes(build_routes(""))
    assert ("POST", "/admin/refunds") in options.idempotency.routes


def test_the_openapi_documents_the_header_on_exactly_those_routes() -> None:
    spec = build_openapi(build_routes(""), title="t", version="1")
    documented = {
        (method.upper(), path)
        for path, item in spec["paths"].items() for method, op in item.items()
        if any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))}
    assert documented == idempotent_routes(build_routes(""))


async def _handler() -> None:
    return None


def test_a_route_with_path_parameters_cannot_be_idempotent() -> None:
    fn = endpoint("x", tag="t", headers=("Idempotency-Key",))(_handler)
    assert doc_of(fn) is not None
    with pytest.raises(ValueError, match="fixed path"):
        idempotent_routes([Route("/things/{thing_id}", fn, methods=["POST"])])
