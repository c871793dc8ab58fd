"""The house of ../shared/DESIGN.md: each top-level module or package of finmaas lives on
a floor, and imports point down only (issue 19).

The test reads every source file with ``ast``, so it sees the imports inside functions
and ``TYPE_CHECKING`` blocks too: a lower floor that reaches up, even lazily, still
depends on what is above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import finmaas

FLOORS = {  # a higher number is a higher floor
    "errors": 0,
    "lazy": 0,
    "config": 0,
    "schema": 0,
    "actor": 0,
    "background": 0,
    "datasets": 0,
    "registry": 1,
    "runtimes": 1,
    "engines": 1,
    "explain": 2,
    "monitoring": 2,
    "security": 2,
    "privacy": 2,
    "publish": 3,
    "training": 4,
    "optimize": 4,
    "jobs": 5,
    "serving": 6,
    "web": 6,
    "api": 6,
    "app": 7,
    "quickstart": 7,
    "client": 7,
    "client_control": 7,
    "cli": 8,
}
SERVING_FLOOR = FLOORS["serving"]

PACKAGE = Path(finmaas.__file__).parent


def _top_level() -> set[str]:
    """finmaas's top-level modules and packages (the root ``__init__`` is the public face)."""
    modules = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    return modules | packages


def _imports(tree: ast.AST, top_level: set[str]) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of each absolute import of finmaas in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "finmaas":
            names = [f"finmaas.{alias.name}" for alias in node.names]  # from finmaas import web
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "finmaas" and len(parts) > 1 and parts[1] in top_level:
                yield node.lineno, parts[1]


def _arrows() -> Iterator[tuple[str, str, str]]:
    """(``file:line``, importing top-level module, imported one) for every import
    between two top-level modules of finmaas."""
    top_level = _top_level()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        src = relative.parts[0].removesuffix(".py")
        if src == "__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, dst in _imports(tree, top_level):
            if dst != src:
                yield f"{relative}:{line}", src, dst


def test_every_top_level_module_has_a_floor() -> None:
    top_level = _top_level()
    unplaced = sorted(top_level - FLOORS.keys())
    gone = sorted(FLOORS.keys() - top_level)
    assert not unplaced, f"place these on a floor of the house: {unplaced}"
    assert not gone, f"on the map but not in finmaas: {gone}"


def test_no_import_runs_up_the_house() -> None:
    upward = [
        f"{where} {src} -> {dst}"
        for where, src, dst in _arrows()
        if src in FLOORS and dst in FLOORS and FLOORS[dst] > FLOORS[src]
    ]
    assert not upward, "imports up the house:\n" + "\n".join(upward)


def test_nothing_below_serving_imports_it() -> None:
    """Monitoring, security and explain are fed by the pipeline through protocols."""
    reaching = [
        f"{where} {src} -> serving"
        for where, src, dst in _arrows()
        if dst == "serving" and src in FLOORS and FLOORS[src] < SERVING_FLOOR
    ]
    assert not reaching, "serving imported from below:\n" + "\n".join(reaching)
