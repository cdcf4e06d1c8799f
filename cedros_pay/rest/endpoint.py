"""Per-handler API documentation, read by the OpenAPI generator (rest/openapi.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class EndpointDoc:
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    description: str = ""
    headers: tuple[str, ...] = ()  # request headers the endpoint reads


def endpoint(summary: str, *, tag: str, request: type[BaseModel] | None = None,
             responses: dict[int, type[BaseModel] | None] | None = None,
             description: str = "", headers: tuple[str, ...] = ()) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__cedros_doc__ = EndpointDoc(  # type: ignore[attr-defined]
            summary=summary, tag=tag, request=request, responses=dict(responses or {}),
            description=description, headers=headers)
        return fn
    return mark


def doc_of(fn: Any) -> EndpointDoc | None:
    doc = getattr(fn, "__cedros_doc__", None)
    return doc if isinstance(doc, EndpointDoc) else None
