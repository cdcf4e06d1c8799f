"""Turning request bodies into typed inputs; every failure is a spec-coded 4xx."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from cedros_pay.core.errors import CedrosError, ErrorCode
from cedros_pay.rest.context import request_header

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024  # the largest legitimate body (a 100-item cart) is a few KiB


class BodyTooLarge(CedrosError):
    """Rendered with HTTP 413 instead of the code's 400."""

    @property
    def http_status(self) -> int:
        return 413


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, at most `limit` bytes (413 beyond), read from `receive`.

    Read here rather than through `request.stream()`: nearly every body arrives in one
    message, and the generator costs more than the rest of the read. Handlers read bodies
    only through this function (and never also through Starlette's `request.body()`).
    """
    declared = request_header(request, b"content-length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(ErrorCode.INVALID_FIELD, f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(ErrorCode.INVALID_FIELD, f"request body exceeds {limit} bytes")
        if not message.get("more_body", False):
            if not chunks:  # the usual case: the whole body in one message
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_error(exc: ValidationError) -> CedrosError:
    first = exc.errors()[0]
    field = _field(first["loc"])
    if first["type"] == "missing":
        return CedrosError(ErrorCode.MISSING_FIELD, f"{field} is required", {"field": field})
    return CedrosError(ErrorCode.INVALID_FIELD, f"{field}: {first['msg']}",
                       {"field": field, "problems": len(exc.errors())})


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise CedrosError(ErrorCode.INVALID_FIELD, "request body is not valid JSON") from exc


async def parse_body(request: Request, model: type[M]) -> M:
    """The body as `model`: size-limited JSON object, spec codes on any problem."""
    data = parse_json(await read_body(request))
    if not isinstance(data, dict):
        raise CedrosError(ErrorCode.INVALID_FIELD, "request body must be a JSON object")
    if None in data.values():  # `null` means absent (rest/models.py)
        data = {k: v for k, v in data.items() if v is not None}
    try:  # the model's validator itself: model_validate adds a Python call around it
        return model.__pydantic_validator__.validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise validation_error(exc) from None
