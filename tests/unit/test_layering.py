"""Imports flow one way (docs/architecture.md "Layers"): adapters over resolvers over storage
and integrations, with x402/ and core/ at the bottom and bootstrap/ the only place that knows
everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cedros_pay

PACKAGE = Path(cedros_pay.__file__).parent
ROOTS = {"app", "cli", "bootstrap"}  # composition: may import anything, imported by nobody

# layer -> the layers it may not import
MAY_NOT_IMPORT: dict[str, set[str]] = {
    "core": {"x402", "storage", "integrations", "resolvers", "rest", "schema", "workers"},
    "x402": {"storage", "integrations", "resolvers", "rest", "schema", "workers"},
    "storage": {"resolvers", "rest", "schema", "workers"},
    "integrations": {"resolvers", "rest", "schema", "workers"},
    "resolvers": {"rest", "schema"},
    "workers": {"rest", "schema"},
    "rest": {"schema", "storage", "integrations", "workers"},
    "schema": {"rest", "storage", "integrations", "workers"},
}


def _imported(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def crossings(package: Path = PACKAGE) -> list[str]:
    bad: list[str] = []
    for path in sorted(package.rglob("*.py")):
        layer = path.relative_to(package).parts[0].removesuffix(".py")
        forbidden = MAY_NOT_IMPORT.get(layer, set()) | (ROOTS if layer not in ROOTS else set())
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] == package.name and len(parts) > 1 and parts[1] in forbidden:
                bad.append(f"{path.relative_to(package)}:{line} imports {module}")
    return bad


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    assert crossings() == []


def test_the_scan_sees_a_crossing(tmp_path: Path) -> None:
    package = tmp_path / "cedros_pay"
    (package / "core").mkdir(parents=True)
    (package / "core" / "money.py").write_text("from cedros_pay.resolvers import pricing\n")
    (package / "rest").mkdir()
    (package / "rest" / "x.py").write_text("import cedros_pay.bootstrap.app\n")
    assert crossings(package) == [
        "core/money.py:1 imports cedros_pay.resolvers",
        "rest/x.py:1 imports cedros_pay.bootstrap.app",
    ]
