"""Relay-style connections (DESIGN §6): `edges { node cursor }`, `pageInfo`, opaque cursors.

Cursors are base64 of `<kind>:<key>`, and a page starts after the first key greater than
the cursor's, so a page boundary survives the item it names being deleted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from cedros_pay.core.errors import CedrosError, ErrorCode

T = TypeVar("T")
N = TypeVar("N")

DEFAULT_PAGE = 50
MAX_PAGE = 100


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    node: N
    cursor: str


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Items in the whole list, all pages.")


def encode_cursor(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    prefix, sep, key = text.partition(":")
    if prefix != kind or not sep:
        raise CedrosError(ErrorCode.INVALID_FIELD, "after is not a cursor from this list",
                          {"field": "after"})
    return key


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 0 <= first <= MAX_PAGE:
        raise CedrosError(ErrorCode.INVALID_FIELD, f"first must be between 0 and {MAX_PAGE}",
                          {"field": "first"})
    return first


def paginate(items: Sequence[T], *, kind: str, key: Callable[[T], str],
             first: int | None, after: str | None,
             node: Callable[[T], N]) -> Connection[N]:
    """One page of `items` ordered by `key` (keyset pagination over an in-memory list)."""
    size = page_size(first)
    ordered = sorted(items, key=key)
    start = 0
    if after is not None:
        boundary = decode_cursor(kind, after)
        start = next((i for i, item in enumerate(ordered) if key(item) > boundary),
                     len(ordered))
    window = ordered[start:start + size]
    edges = [Edge(node=node(item), cursor=encode_cursor(kind, key(item))) for item in window]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=start + len(window) < len(ordered),
            has_previous_page=start > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=len(ordered),
    )
