"""Admin operations on the webhook queue (issue 12), shared by REST and GraphQL.

Callers authenticate first (`authorize`), before any lookup, so a refused caller learns
nothing about which deliveries exist: 401 `unauthorized` without valid credentials, 403
`forbidden` for a correctly signed request from a key that is not an admin (DESIGN §7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from cedros_pay.core.clock import Clock
from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.core.models import PendingWebhook, WebhookStatus
from cedros_pay.resolvers.admin_auth import (
    AdminAuth,
    AdminIdentity,
    SignedHeaders,
)
from cedros_pay.storage.repos import WebhookQueue

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 128


def payload_json(item: PendingWebhook) -> Any:
    """The queued payload as JSON for an admin to read (its text if it is not JSON)."""
    try:
        return orjson.loads(item.payload)
    except orjson.JSONDecodeError:
        return item.payload


def parse_status(value: str | None) -> WebhookStatus | None:
    if value is None or value == "":
        return None
    try:
        return WebhookStatus(value.strip().lower())
    except ValueError:
        allowed = ", ".join(s.value for s in WebhookStatus)
        raise CedrosError(ErrorCode.INVALID_FIELD, f"status must be one of: {allowed}",
                          {"field": "status"}) from None


def parse_limit(value: str | int | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise CedrosError(ErrorCode.INVALID_FIELD,
                          f"limit must be an integer between 1 and {MAX_LIMIT}",
                          {"field": "limit"})
    return limit


def _check_id(webhook_id: str) -> str:
    if not webhook_id or len(webhook_id) > MAX_ID:
        raise CedrosError(ErrorCode.INVALID_FIELD, "id must be a webhook id", {"field": "id"})
    return webhook_id


class WebhookAdmin:
    def __init__(self, queue: WebhookQueue, auth: AdminAuth, clock: Clock,
                 wake: Callable[[], None] | None = None) -> None:
        self._queue = queue
        self._auth = auth
        self._clock = clock
        self._wake = wake

    async def authorize(self, tenant: str, authorization: str | None,
                        signed: SignedHeaders) -> AdminIdentity:
        """401 without valid credentials, 403 for a proven signer who is not an admin."""
        return await self._auth.authenticate(tenant, authorization, signed)

    async def list(self, tenant: str, status: WebhookStatus | None = None,
                   limit: int = DEFAULT_LIMIT) -> list[PendingWebhook]:
        """Newest first."""
        return await self._queue.list(tenant, status, limit)

    async def get(self, tenant: str, webhook_id: str) -> PendingWebhook:
        found = await self._queue.get(tenant, _check_id(webhook_id))
        if found is None:
            raise CedrosError(ErrorCode.NOT_FOUND, "no such webhook", {"id": webhook_id})
        return found

    async def retry(self, tenant: str, webhook_id: str) -> PendingWebhook:
        """Back to pending, due now, a fresh attempt budget; the payload (and its
        `eventId`) unchanged. An item being delivered right now cannot be retried."""
        if not await self._queue.retry(tenant, _check_id(webhook_id), self._clock.now()):
            current = await self.get(tenant, webhook_id)  # not_found when absent
            raise CedrosError(ErrorCode.INVALID_FIELD,
                              f"webhook is {current.status.value}; try again shortly",
                              {"field": "id", "status": current.status.value})
        if self._wake is not None:
            self._wake()
        return await self.get(tenant, webhook_id)

    async def delete(self, tenant: str, webhook_id: str) -> None:
        if not await self._queue.delete(tenant, _check_id(webhook_id)):
            raise CedrosError(ErrorCode.NOT_FOUND, "no such webhook", {"id": webhook_id})
