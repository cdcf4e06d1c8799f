"""A memo that cannot grow with what clients send.

Keys of the memos that survive (API version decisions, rate-limit buckets per client,
catalog snapshots per tenant, quote offers per coupon code) come from requests, so each
is bounded. When full, the entry written longest ago goes: a flood of new keys costs
recomputation, never memory, and dropping one entry at a time (rather than all) keeps
the rest warm.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """A dict of at most `limit` entries; `put` evicts the entry written longest
    ago when it is full.

    `get` is the dict's own method (bound once), so a hit costs what a dict probe
    costs; only a miss runs Python code here.
    """

    __slots__ = ("_items", "get", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a bounded memo needs room for one entry")
        self.limit = limit
        self._items: dict[K, V] = {}
        self.get: Callable[[K], V | None] = self._items.get

    def put(self, key: K, value: V) -> V:
        """Remember `value` under `key` (now the newest entry) and return it."""
        items = self._items
        if key in items:
            del items[key]
        elif len(items) >= self.limit:
            del items[next(iter(items))]
        items[key] = value
        return value

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)
