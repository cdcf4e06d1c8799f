"""Relay-style connections (DESIGN §6): `edges { node cursor }`, `pageInfo`, opaque cursors.

Cursors are base64 of `<kind>:<key>`, and a page starts after the first key greater than
the cursor's, so a page boundary survives the item it names being deleted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Listing(Generic[N]):
    """A whole list in key order with its edges made: what a page is cut from. Immutable,
    so one can serve many requests (the catalog snapshot keeps the products')."""

    kind: str
    keys: tuple[str, ...]
    edges: tuple[Edge[N], ...]


def listing(items: Sequence[T], *, kind: str, key: Callable[[T], str],
            node: Callable[[T], N]) -> Listing[N]:
    ordered = sorted(items, key=key)
    keys = tuple([key(item) for item in ordered])
    return Listing(kind, keys, tuple([Edge(node=node(item), cursor=encode_cursor(kind, k))
                                      for item, k in zip(ordered, keys, strict=True)]))


def page(whole: Listing[N], *, first: int | None, after: str | None) -> Connection[N]:
    """One page of `whole` (keyset pagination): `first` edges after the cursor's key."""
    size = page_size(first)
    start = bisect_right(whole.keys, decode_cursor(whole.kind, after)) if after is not None \
        else 0
    edges = list(whole.edges[start:start + size])
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=start + len(edges) < len(whole.keys),
            has_previous_page=start > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=len(whole.keys),
    )


def paginate(items: Sequence[T], *, kind: str, key: Callable[[T], str],
             first: int | None, after: str | None,
             node: Callable[[T], N]) -> Connection[N]:
    """One page of `items` ordered by `key` (keyset pagination over an in-memory list)."""
    size = page_size(first)  # checked before any node is made
    return page(listing(items, kind=kind, key=key, node=node), first=size, after=after)
