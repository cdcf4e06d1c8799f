"""JSON responses in the spec's exact shapes, serialised with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class SpecJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def spec_json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return SpecJSON(data, status_code=status, headers=dict(headers) if headers else None)
