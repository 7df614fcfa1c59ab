"""The house: wmark/ keeps a short top level, and each package is named in the design page's layout table."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wmark_top_level_holds_at_most_twelve_modules():
    modules = sorted(p.name for p in (ROOT / "wmark").glob("*.py"))
    assert len(modules) <= 12, modules


def test_every_package_is_in_the_layout_table():
    design = (ROOT / "docs" / "design.md").read_text()
    packages = [p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("wmark/*/__init__.py")]
    assert packages and all(f"`{name}/`" in design for name in packages), packages
