"""Admin GraphQL over the webhook queue (issue 12): `webhookDeliveries` and the
`retryWebhookDelivery` / `deleteWebhookDelivery` mutations, on the REST resolvers."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import PendingWebhook
from cedros_pay.resolvers.webhook_admin import (
    MAX_LIMIT,
    WebhookAdmin,
    parse_status,
    payload_json,
)
from cedros_pay.schema.context import Context
from cedros_pay.schema.pagination import (
    Connection,
    Edge,
    PageInfo,
    decode_cursor,
    encode_cursor,
    page_size,
)
from cedros_pay.schema.types.results import Deleted

KIND = "webhook"


@strawberry.type(description="One queued webhook delivery; `payload` is the exact JSON sent.")
class WebhookDelivery:
    id: strawberry.ID
    status: str
    event_type: str
    event_id: str
    url: str
    attempts: int
    max_attempts: int
    last_error: str
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    payload: JSON

    @classmethod
    def of(cls, w: PendingWebhook) -> WebhookDelivery:
        return cls(id=strawberry.ID(w.id), status=w.status.value, event_type=w.event_type,
                   event_id=w.event_id, url=w.url, attempts=w.attempts,
                   max_attempts=w.max_attempts, last_error=w.last_error,
                   last_attempt_at=w.last_attempt_at, next_attempt_at=w.next_attempt_at,
                   created_at=w.created_at, completed_at=w.completed_at,
                   payload=JSON(payload_json(w)))


def _admin(info: strawberry.Info[Context]) -> WebhookAdmin:
    admin = info.context.services.webhook_admin
    if admin is None:
        raise CedrosError(ErrorCode.FORBIDDEN, "the webhook queue is not available here")
    return admin


def _key(w: PendingWebhook) -> str:
    return f"{w.created_at.strftime('%Y-%m-%dT%H:%M:%S.%f')}|{w.id}"


async def webhook_deliveries(info: strawberry.Info[Context], first: int | None = None,
                             after: str | None = None, status: str | None = None,
                             ) -> Connection[WebhookDelivery] | None:
    """Newest first; a page starts after the cursor's position even if that item is gone."""
    size = page_size(first)
    items = await _admin(info).list(info.context.tenant, parse_status(status), MAX_LIMIT)
    start = 0
    if after is not None:
        boundary = decode_cursor(KIND, after)
        start = next((i for i, w in enumerate(items) if _key(w) < boundary), len(items))
    window = items[start:start + size]
    edges = [Edge(node=WebhookDelivery.of(w), cursor=encode_cursor(KIND, _key(w)))
             for w in window]
    return Connection(edges=edges, total_count=len(items), page_info=PageInfo(
        has_next_page=start + len(window) < len(items), has_previous_page=start > 0,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None))


async def retry_webhook_delivery(info: strawberry.Info[Context],
                                 id: strawberry.ID) -> WebhookDelivery | None:
    return WebhookDelivery.of(await _admin(info).retry(info.context.tenant, str(id)))


async def delete_webhook_delivery(info: strawberry.Info[Context],
                                  id: strawberry.ID) -> Deleted | None:
    await _admin(info).delete(info.context.tenant, str(id))
    return Deleted(id=str(id), deleted=True)
