"""Token buckets (spec 13): the rule, the arithmetic, and the store seam.

The arithmetic lives here, free of I/O, so the memory backend and the tests share it and
the Redis backend's Lua script can be checked against it. A request takes one token from
every bucket that applies to it, or from none: a request refused by its wallet bucket
does not spend a global token (so one abusive wallet cannot drain the global budget).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket to draw from: `limit` tokens, refilled at `limit` per `window` seconds."""

    kind: str  # "global", "wallet" or "ip": the metric label and the 429's details
    key: str  # the bucket's identity within its kind ("" for global)
    limit: int
    window: float  # seconds
    # Derived once: both are read on every draw.
    refill_interval: float = field(init=False, repr=False, compare=False)
    """Seconds per token: after a burst, one request per interval (spec 13)."""
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "refill_interval", self.window / self.limit)
        object.__setattr__(self, "name", f"{self.kind}:{self.key}" if self.key else self.kind)


class Verdict(NamedTuple):
    """The outcome of one draw, with what the X-RateLimit-* headers report.

    A named tuple rather than a dataclass: one is made per request, and a tuple is the
    cheapest immutable record to build."""

    allowed: bool
    limit: int  # the deciding bucket's size (the refusing one, else the emptiest)
    remaining: int  # whole tokens left in that bucket
    retry_after: float  # seconds until that bucket holds a token again (0 when it does)
    denied_by: str | None = None  # the refusing bucket's kind

    @property
    def retry_after_seconds(self) -> int:
        """Retry-After is whole seconds; rounding up never invites an early retry."""
        return max(1, math.ceil(self.retry_after)) if not self.allowed else 0


@dataclass(slots=True)
class BucketState:
    tokens: float
    updated: float  # seconds on the backend's clock


def refill(state: BucketState | None, bucket: Bucket, now: float) -> float:
    """Tokens in the bucket at `now`: full when new, never above `limit` (no hoarding)."""
    if state is None:
        return float(bucket.limit)
    elapsed = max(0.0, now - state.updated)
    return min(float(bucket.limit), state.tokens + elapsed / bucket.refill_interval)


def draw(levels: Sequence[float], buckets: Sequence[Bucket]) -> tuple[list[float], Verdict]:
    """Take one token from each bucket if every one has a token, else from none.

    `levels` are the refilled token counts, in the order of `buckets`; returns the new
    levels and the verdict.
    """
    if not buckets:
        return [], Verdict(allowed=True, limit=0, remaining=0, retry_after=0.0)
    refusing = next((i for i, level in enumerate(levels) if level < 1.0), None)
    if refusing is not None:
        b = buckets[refusing]
        wait = (1.0 - levels[refusing]) * b.refill_interval
        return list(levels), Verdict(allowed=False, limit=b.limit, remaining=0,
                                     retry_after=wait, denied_by=b.kind)
    after = [level - 1.0 for level in levels]
    tightest, lowest = 0, after[0] / buckets[0].limit
    for i in range(1, len(buckets)):  # the first of the emptiest, as min() would pick
        share = after[i] / buckets[i].limit
        if share < lowest:
            tightest, lowest = i, share
    return after, Verdict(allowed=True, limit=buckets[tightest].limit,
                          remaining=int(after[tightest]), retry_after=0.0)


class RateLimiter(Protocol):
    """Where bucket state lives: one process (memory) or every instance (Redis)."""

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Atomically draw one token from all `buckets` or from none."""
        ...

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict | None:
        """`acquire` without awaiting, when the backend can (memory); None when it must
        do I/O (Redis): then the caller awaits `acquire`."""
        ...
