"""The house: wmark/ keeps a short top level, each package is named in the design page's layout table, and no
package imports one above it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wmark_top_level_holds_at_most_twelve_modules():
    modules = sorted(p.name for p in (ROOT / "wmark").glob("*.py"))
    assert len(modules) <= 12, modules


def test_every_package_is_in_the_layout_table():
    design = (ROOT / "docs" / "design.md").read_text()
    packages = [p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("wmark/*/__init__.py")]
    assert packages and all(f"`{name}/`" in design for name in packages), packages


LOWER_LAYERS = [("attacks", "wmark"), ("wmark.domain", "wmark.sync")]
"""(package, package above it): nothing the lower one imports, directly or through other modules, is in the upper
one. attacks is importable on its own; the domain holds what marking needs, and synchronisation, which reads marks,
builds on it."""


def _source(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def _imported(module: str) -> set[str]:
    """Every module an import in ``module``'s source names (inside functions too) as an absolute name, and the
    packages above each, whose ``__init__`` importing it runs."""
    path = _source(module)
    package = (module if path.name == "__init__.py" else module.rpartition(".")[0]).split(".")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) + 1 - node.level] + [node.module or ""]).strip(".") \
                if node.level else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, where it is one
    return {".".join(name.split(".")[:i]) for name in names for i in range(1, name.count(".") + 2)}


def _reached(package: str) -> set[str]:
    """The modules of this repository that importing a module of ``package`` can load."""
    folder = ROOT.joinpath(*package.split("."))
    todo = [package, *(f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")]
    seen = set()
    while todo:
        module = todo.pop()
        if module not in seen and _source(module) is not None:
            seen.add(module)
            todo.extend(_imported(module))
    return seen


@pytest.mark.parametrize("lower, upper", LOWER_LAYERS)
def test_nothing_imports_upward(lower, upper):
    upward = sorted(m for m in _reached(lower) if m == upper or m.startswith(upper + "."))
    assert not upward, f"{lower} imports {upward}"
