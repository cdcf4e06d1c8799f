"""The REST route table (spec 02): paywall routes under the configured prefix."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from cedros_pay.rest import (
    admin,
    admin_webhooks,
    catalog,
    discovery,
    gasless,
    payments,
    paywall,
    refunds,
)
from cedros_pay.rest.health import health
from cedros_pay.rest.stripe import stripe_routes
from cedros_pay.rest.subscriptions import subscription_routes


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
        Route(f"{v1}/refunds/request", refunds.request_refund, methods=["POST"]),
        Route(f"{v1}/refunds/pending", refunds.pending_refunds, methods=["POST"]),
        Route(f"{v1}/refunds/approve", refunds.approve_refund, methods=["POST"]),
        Route(f"{v1}/refunds/deny", refunds.deny_refund, methods=["POST"]),
        Route(f"{v1}/gasless-transaction", gasless.gasless_transaction, methods=["POST"]),
        Route(f"{v1}/x402-transaction/verify", payments.transaction, methods=["GET"]),
        *stripe_routes(prefix),
        *subscription_routes(prefix),
        *admin_webhook_routes(prefix),
        Route(f"{prefix}/admin/refunds", refunds.open_card_refund, methods=["POST"]),
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

