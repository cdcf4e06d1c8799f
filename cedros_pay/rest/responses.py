"""JSON responses in the spec's exact shapes, serialised with orjson."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

_JSON = (b"content-type", b"application/json")


class SpecJSON(Response):
    """A JSON response whose header list is built in one pass.

    Starlette's `init_headers` costs as much as the rest of a cheap response; this makes
    the same list (the given headers lower-cased, plus content-length and content-type
    unless given) directly. Only the constructor differs: sending is Starlette's.
    """

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200,
                 headers: Mapping[str, str] | None = None,
                 raw_headers: Sequence[tuple[bytes, bytes]] = (), *,
                 encoded: bytes | None = None) -> None:
        """`raw_headers`: more headers, already lower-case and encoded (constants made
        once), taken as they are; neither content-length nor content-type. `encoded`:
        the body already serialised (then `content` is ignored)."""
        self.status_code = status_code
        self.background = None
        self.body = body = orjson.dumps(content) if encoded is None else encoded
        raw: list[tuple[bytes, bytes]] = [*raw_headers]
        length = typed = False
        if headers:
            for k, v in headers.items():
                name = k.lower().encode("latin-1")
                length = length or name == b"content-length"
                typed = typed or name == b"content-type"
                raw.append((name, v.encode("latin-1")))
        if not length:
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        if not typed:
            raw.append(_JSON)
        self.raw_headers = raw


def spec_json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return SpecJSON(data, status_code=status, headers=headers)
