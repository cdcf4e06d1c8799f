"""The dead-letter file (spec 20 `FileDLQStore`): one JSON object per line, appended.

A line is spec 20's `FailedWebhook` in camelCase, the payload as a JSON object. Appends
run in a thread (file I/O off the event loop) under a lock, so concurrent failures never
interleave their lines.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from cedros_pay.core.clock import to_rfc3339
from cedros_pay.core.models import PendingWebhook


def failed_webhook(item: PendingWebhook) -> dict[str, Any]:
    try:
        payload: Any = orjson.loads(item.payload)
    except orjson.JSONDecodeError:
        payload = item.payload
    return {
        "id": item.id, "url": item.url, "payload": payload, "headers": dict(item.headers),
        "eventType": item.event_type, "eventId": item.event_id, "attempts": item.attempts,
        "lastError": item.last_error,
        "lastAttempt": to_rfc3339(item.last_attempt_at) if item.last_attempt_at else None,
        "createdAt": to_rfc3339(item.created_at),
    }


class DeadLetterFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(line)
            f.flush()

    async def save(self, item: PendingWebhook) -> None:
        line = orjson.dumps(failed_webhook(item)) + b"\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)
