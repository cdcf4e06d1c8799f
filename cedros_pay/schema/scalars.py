"""Scalars whose wire form the spec fixes: timestamps are RFC 3339 with `Z` (DESIGN §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.scalar import ScalarDefinition

from cedros_pay.core.clock import as_utc, parse_rfc3339, to_rfc3339


def _serialize(value: Any) -> str:
    # SQLite hands back naive datetimes; they are UTC by convention.
    return to_rfc3339(as_utc(value))


def _parse(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an RFC 3339 string")
    return parse_rfc3339(value)


DATETIME = strawberry.scalar(
    name="DateTime",
    description="An RFC 3339 timestamp in UTC, e.g. 2026-01-01T12:00:00Z.",
    serialize=_serialize,
    parse_value=_parse,
)

# Every `datetime` annotation in the schema uses the scalar above (StrawberryConfig).
SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME}
