"""No module of cedros_pay keeps state that its code changes (DESIGN §2 rule 3).

A cache, pool or registry at module level is shared by every app, test and embedder in
the process; such state belongs to an object the composition root builds. The scan
parses each module and reports a name bound at module level to a mutable container
(a literal, a comprehension, or a call of a container or memo type) that the module
then changes in place, rebinds through `global`, or hands out a mutating method of.
Read-only tables are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cedros_pay

PACKAGE = Path(cedros_pay.__file__).parent

KNOWN: set[tuple[str, str]] = set()  # none: keep it that way

_CONTAINERS = {"dict", "list", "set", "bytearray", "deque", "defaultdict", "OrderedDict",
               "Counter", "WeakValueDictionary", "WeakKeyDictionary", "WeakSet",
               "BoundedMemo", "Random", "ChainMap"}
_CHANGES = {"append", "extend", "insert", "pop", "popitem", "popleft", "appendleft",
            "remove", "clear", "update", "setdefault", "add", "discard", "sort", "reverse",
            "rotate", "move_to_end", "put", "seed", "__setitem__", "__delitem__"}


def _is_container(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp
                  | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else ""
        return name in _CONTAINERS
    return False


def _module_containers(tree: ast.Module) -> dict[str, int]:
    found: dict[str, int] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and _is_container(stmt.value):
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        elif isinstance(stmt, ast.AnnAssign) and _is_container(stmt.value) \
                and isinstance(stmt.target, ast.Name):
            names = [stmt.target.id]
        else:
            continue
        for name in names:
            found.setdefault(name, stmt.lineno)
    return found


def _changed(tree: ast.Module) -> set[str]:
    """Names the module changes in place, rebinds from a function, or whose mutating
    methods it reaches for (`x.clear` handed to a callback changes `x` later)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.update(node.names)
        elif isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.value, ast.Name) \
                and (node.attr in _CHANGES if isinstance(node, ast.Attribute)
                     else isinstance(node.ctx, ast.Store | ast.Del)):
            out.add(node.value.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


def changed_module_state(source: str) -> list[tuple[str, int]]:
    tree = ast.parse(source)
    changed = _changed(tree)
    return sorted((name, line) for name, line in _module_containers(tree).items()
                  if name in changed)


def test_the_scan_sees_module_state_that_code_changes() -> None:
    source = """
import os, random
from collections import deque
from cedros_pay.core.bounded import BoundedMemo
TABLE = {"a": 1}                 # read only
NAMES = [n for n in "ab"]        # read only
_cache = {}
_pool: list[int] = []
_rng = random.Random()
_seen = set()
_memo = BoundedMemo(8)
_queue = deque()
_count = [0]
def f(key):
    global _seen
    _seen = {key}
    _cache[key] = TABLE.get(key)
    _pool.append(key)
    _memo.put(key, key)
    _count[0] += 1
    return NAMES[0]
os.register_at_fork(after_in_child=_rng.seed)
os.register_at_fork(after_in_child=_queue.clear)
"""
    assert [name for name, _ in changed_module_state(source)] == [
        "_cache", "_count", "_memo", "_pool", "_queue", "_rng", "_seen"]


def test_no_module_keeps_state_that_its_code_changes() -> None:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, line in changed_module_state(path.read_text(encoding="utf-8")):
            found.add((path.relative_to(PACKAGE).as_posix(), name, line))
    unexpected = sorted(f"{p}:{line} {name}" for p, name, line in found
                        if (p, name) not in KNOWN)
    assert unexpected == []
