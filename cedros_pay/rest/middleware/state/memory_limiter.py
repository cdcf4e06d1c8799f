"""Token buckets in this process's memory, bounded by LRU (spec 10's 10,000 entries)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from cedros_pay.rest.middleware.state.buckets import Bucket, BucketState, Verdict, draw


class MemoryRateLimiter:
    """Buckets keyed by name; the least recently used is evicted beyond `max_entries`.

    Everything runs on the event loop without awaiting, so a draw is atomic without a lock.
    An evicted bucket comes back full, which only ever errs towards letting a request in;
    the global bucket is touched by every request, so it is never the one evicted.
    """

    def __init__(self, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._buckets: OrderedDict[str, BucketState] = OrderedDict()
        self._windows: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        return self.acquire_now(buckets)

    def acquire_now(self, buckets: Sequence[Bucket]) -> Verdict:
        now = self._clock()
        store = self._buckets
        states: list[BucketState | None] = []
        levels: list[float] = []
        every_has_one = True
        for b in buckets:
            state = store.get(b.name)
            states.append(state)
            if state is None:
                level = float(b.limit)
            else:  # `refill`, inline: this runs for every bucket of every request
                elapsed = now - state.updated
                level = state.tokens + elapsed / b.refill_interval if elapsed > 0 else state.tokens
                if level > b.limit:
                    level = float(b.limit)
            if level < 1.0:
                every_has_one = False
            levels.append(level)
        if not every_has_one or not levels:
            after, verdict = draw(levels, buckets)
            self._save(buckets, states, after, now)
            return verdict
        # `draw` and `_save` for the usual case, every bucket holding a token, in one loop.
        tightest = 0
        lowest = 2.0
        for i, b in enumerate(buckets):
            level = levels[i] = levels[i] - 1.0
            share = level / b.limit
            if share < lowest:  # the first of the emptiest, as `draw` picks
                tightest = i
                lowest = share
            state = states[i]
            name = b.name
            if state is not None and store.get(name) is state:  # not evicted meanwhile
                store.move_to_end(name)
                state.tokens = level
                state.updated = now
            else:
                self._store(b, BucketState(tokens=level, updated=now))
        b = buckets[tightest]
        return Verdict(True, b.limit, int(levels[tightest]), 0.0)  # allowed, limit, left

    def _save(self, buckets: Sequence[Bucket], states: list[BucketState | None],
              levels: list[float], now: float) -> None:
        store = self._buckets
        for bucket, state, level in zip(buckets, states, levels, strict=True):
            name = bucket.name
            if state is not None and store.get(name) is state:  # not evicted meanwhile
                store.move_to_end(name)  # the hot path: update in place, no new state
                state.tokens = level
                state.updated = now
            else:
                self._store(bucket, BucketState(tokens=level, updated=now))

    def _store(self, bucket: Bucket, state: BucketState) -> None:
        name = bucket.name
        if name in self._buckets:
            self._buckets.move_to_end(name)
        else:
            while len(self._buckets) >= self._max:  # evict before adding (spec 10)
                old, _ = self._buckets.popitem(last=False)
                self._windows.pop(old, None)
        self._buckets[name] = state
        self._windows[name] = bucket.window

    async def sweep(self) -> int:
        """Drop buckets idle long enough to be full again: they hold no information."""
        now = self._clock()
        idle = [name for name, state in self._buckets.items()
                if now - state.updated >= self._windows.get(name, 0.0)]
        for name in idle:
            del self._buckets[name]
            self._windows.pop(name, None)
        return len(idle)
