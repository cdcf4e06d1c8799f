"""The REST route table (spec 02): paywall routes under the configured prefix, and the
router that dispatches them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from cedros_pay.rest import admin, admin_webhooks, catalog, discovery, gasless, payments, paywall
from cedros_pay.rest.health import health
from cedros_pay.rest.stripe import stripe_routes


def build_routes(prefix: str) -> list[BaseRoute]:
    v1 = f"{prefix}/paywall/v1"
    return [
        Route(f"{prefix}/cedros-health", health, methods=["GET"]),
        Route(f"{prefix}/.well-known/payment-options", discovery.payment_options,
              methods=["GET"]),
        Route(f"{prefix}/.well-known/agent.json", discovery.agent_card, methods=["GET"]),
        Route(f"{prefix}/resources/list", discovery.mcp_resources, methods=["POST"]),
        Route(f"{prefix}/openapi.json", discovery.openapi, methods=["GET"]),
        Route(f"{v1}/products", catalog.list_products, methods=["GET"]),
        Route(f"{v1}/coupons/validate", catalog.validate_coupon, methods=["POST"]),
        Route(f"{v1}/quote", paywall.quote, methods=["POST"]),
        Route(f"{v1}/cart/quote", paywall.cart_quote, methods=["POST"]),
        Route(f"{v1}/nonce", admin.create_nonce, methods=["POST"]),
        Route(f"{v1}/verify", payments.verify, methods=["POST"]),
        Route(f"{v1}/gasless-transaction", gasless.gasless_transaction, methods=["POST"]),
        Route(f"{v1}/x402-transaction/verify", payments.transaction, methods=["GET"]),
        *stripe_routes(prefix),
        *admin_webhook_routes(prefix),
        # Last: one path segment after /paywall, so it never shadows /paywall/v1/...
        Route(f"{prefix}/paywall/{{resource_id}}", payments.resource, methods=["GET", "POST"]),
    ]


def admin_webhook_routes(prefix: str) -> list[BaseRoute]:
    hooks = f"{prefix}/admin/webhooks"
    return [
        Route(hooks, admin_webhooks.list_webhooks, methods=["GET"]),
        Route(f"{hooks}/{{webhook_id}}", admin_webhooks.get_webhook, methods=["GET"]),
        Route(f"{hooks}/{{webhook_id}}", admin_webhooks.delete_webhook, methods=["DELETE"]),
        Route(f"{hooks}/{{webhook_id}}/retry", admin_webhooks.retry_webhook, methods=["POST"]),
    ]


class IndexedRouter(Router):
    """Starlette's router with an index of its fixed paths.

    Starlette tries each route's pattern in turn, which made routing a visible share of a
    quote. A request for a path without parameters is looked up in a dict instead, then
    dispatched exactly as Starlette would (same scope keys, same handler). Everything
    else takes Starlette's way: paths with parameters, a method the route does not serve
    (Starlette answers 405), websockets, and requests under a parent's root path.
    """

    def __init__(self, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        super().__init__(routes=list(routes), **kwargs)
        self.fixed: dict[str, Route] = {}  # path -> the route Starlette would pick
        for i, route in enumerate(self.routes):
            if not isinstance(route, Route) or route.param_convertors or not route.methods:
                continue
            path = route.path
            # Only when no earlier route would have claimed the path first.
            if route.path not in self.fixed and not any(
                    isinstance(r, Route) and r.path_regex.match(path) for r in self.routes[:i]):
                self.fixed[path] = route

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.fixed.get(scope["path"])
            if route is not None and route.methods and scope["method"] in route.methods:
                if "router" not in scope:
                    scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)
