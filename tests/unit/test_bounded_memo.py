"""BoundedMemo: a dict that never holds more than its limit, dropping the entry written
longest ago, compared against a plain model over random operations."""

from __future__ import annotations

import random

import pytest

from cedros_pay.core.bounded import BoundedMemo


def test_a_full_memo_drops_the_entry_written_longest_ago() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(2)
    assert memo.put("a", 1) == 1
    memo.put("b", 2)
    memo.put("a", 10)  # rewritten: now the newest
    memo.put("c", 3)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (10, None, 3)
    assert len(memo) == 2 and list(memo) == ["a", "c"]


def test_a_stored_none_is_an_entry_like_any_other() -> None:
    memo: BoundedMemo[str, int | None] = BoundedMemo(2)
    memo.put("none", None)
    memo.put("x", 1)
    memo.put("none", None)  # a rewrite, not a new key: nothing is evicted
    assert list(memo) == ["x", "none"]


def test_pop_and_clear() -> None:
    memo: BoundedMemo[int, str] = BoundedMemo(3)
    for i in range(3):
        memo.put(i, str(i))
    assert memo.pop(1) == "1" and memo.pop(1) is None
    assert 1 not in memo and 0 in memo
    memo.clear()
    assert len(memo) == 0 and memo.get(0) is None


def test_a_memo_needs_room() -> None:
    with pytest.raises(ValueError):
        BoundedMemo(0)


def test_random_operations_match_a_model() -> None:
    rng = random.Random(42)
    limit = 5
    memo: BoundedMemo[int, int] = BoundedMemo(limit)
    model: list[tuple[int, int]] = []  # oldest write first
    for step in range(5000):
        key = rng.randrange(12)
        if rng.random() < 0.7:
            memo.put(key, step)
            model = [(k, v) for k, v in model if k != key]
            if len(model) >= limit:
                model.pop(0)
            model.append((key, step))
        else:
            assert memo.pop(key) == dict(model).get(key)
            model = [(k, v) for k, v in model if k != key]
        assert [(k, memo.get(k)) for k in memo] == model
