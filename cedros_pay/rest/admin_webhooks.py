"""Admin webhook queue endpoints (spec 03 "Admin Endpoints", registered here; issue 12).

Each handler authenticates before it looks anything up; the resolver says 401 or 403.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import PendingWebhook
from cedros_pay.resolvers.admin_auth import SignedHeaders
from cedros_pay.resolvers.webhook_admin import (
    WebhookAdmin,
    parse_limit,
    parse_status,
    payload_json,
)
from cedros_pay.rest.context import request_header, services, tenant
from cedros_pay.rest.endpoint import endpoint
from cedros_pay.rest.models import (
    WebhookDeleted,
    WebhookDeliveries,
    WebhookDelivery,
    WebhookIdPath,
    WebhookListQuery,
)
from cedros_pay.rest.responses import spec_json

_NO_STORE = {"Cache-Control": "no-store"}


def _time(value: Any) -> str | None:
    return to_rfc3339(value) if value is not None else None


def webhook(item: PendingWebhook) -> dict[str, Any]:
    return {
        "id": item.id, "status": item.status.value, "eventType": item.event_type,
        "eventId": item.event_id, "url": item.url, "attempts": item.attempts,
        "maxAttempts": item.max_attempts, "lastError": item.last_error,
        "lastAttemptAt": _time(item.last_attempt_at),
        "nextAttemptAt": _time(item.next_attempt_at), "createdAt": _time(item.created_at),
        "completedAt": _time(item.completed_at), "payload": payload_json(item),
    }


async def _authorized(request: Request) -> tuple[WebhookAdmin, str]:
    admin = services(request).webhook_admin
    if admin is None:
        raise CedrosError(ErrorCode.FORBIDDEN, "the webhook queue is not available here")
    who = tenant(request)
    await admin.authorize(who, request_header(request, b"authorization"), SignedHeaders(
        signer=request_header(request, b"x-signer"),
        signature=request_header(request, b"x-signature"),
        message=request_header(request, b"x-message")))
    return admin, who


@endpoint("List queued webhook deliveries, newest first (admin)", tag="admin",
          admin=True, query=WebhookListQuery, responses={200: WebhookDeliveries})
async def list_webhooks(request: Request) -> Response:
    admin, who = await _authorized(request)
    q = request.query_params
    items = await admin.list(who, parse_status(q.get("status")), parse_limit(q.get("limit")))
    return spec_json({"webhooks": [webhook(i) for i in items], "count": len(items)},
                     headers=_NO_STORE)


@endpoint("One webhook delivery (admin)", tag="admin", admin=True, path=WebhookIdPath,
          responses={200: WebhookDelivery}, errors=(ErrorCode.NOT_FOUND,))
async def get_webhook(request: Request) -> Response:
    admin, who = await _authorized(request)
    item = await admin.get(who, request.path_params["webhook_id"])
    return spec_json(webhook(item), headers=_NO_STORE)


@endpoint("Deliver a webhook again now, same eventId, fresh attempts (admin)", tag="admin",
          admin=True, path=WebhookIdPath, responses={200: WebhookDelivery},
          errors=(ErrorCode.NOT_FOUND,))
async def retry_webhook(request: Request) -> Response:
    admin, who = await _authorized(request)
    item = await admin.retry(who, request.path_params["webhook_id"])
    return spec_json(webhook(item), headers=_NO_STORE)


@endpoint("Remove a webhook from the queue; it is never delivered (admin)", tag="admin",
          admin=True, path=WebhookIdPath, responses={200: WebhookDeleted},
          errors=(ErrorCode.NOT_FOUND,))
async def delete_webhook(request: Request) -> Response:
    admin, who = await _authorized(request)
    webhook_id = request.path_params["webhook_id"]
    await admin.delete(who, webhook_id)
    return spec_json({"id": webhook_id, "deleted": True}, headers=_NO_STORE)
