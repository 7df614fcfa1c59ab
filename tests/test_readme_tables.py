"""The results tables of README.md and docs/*.md are what benchmarks/results gives (benchmarks/readme_tables.py)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_tables.py"


@pytest.fixture(scope="module")
def tables():
    """benchmarks/readme_tables.py as a module; the benchmark scripts it imports are unloaded afterwards."""
    before = set(sys.modules)
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    yield module
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", None) and Path(sys.modules[name].__file__).parent == SCRIPT.parent:
            del sys.modules[name]


def test_readme_and_docs_tables_match_the_committed_results():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_covers_the_readme_and_every_docs_page(tables):
    assert tables.files() == [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    listed = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, check=True).stdout
    held = {line.split(":", 1)[0] for line in listed.splitlines()}
    assert "README.md" in held and any(name.startswith("docs/") for name in held), listed


def test_a_region_is_rewritten_wherever_it_appears(tables):
    text = ("# page\n\n<!-- table:visibility -->\n| stale | table |\n<!-- /table:visibility -->\n\nprose\n\n"
            "<!-- table:visibility -->\n<!-- /table:visibility -->\n")
    done = tables.render(text, {"visibility": "| fresh |\n"})
    assert done.count("<!-- table:visibility -->\n| fresh |\n<!-- /table:visibility -->") == 2
    assert "stale" not in done and done.endswith("prose\n\n<!-- table:visibility -->\n| fresh |\n"
                                                 "<!-- /table:visibility -->\n")


def test_markers_quoted_in_prose_are_not_regions(tables):
    text = "Tables sit between `<!-- table:NAME -->` and `<!-- /table:NAME -->` markers.\n"
    assert tables.render(text, {}) == text


def test_an_unknown_region_is_an_error(tables):
    with pytest.raises(SystemExit, match="unknown table region"):
        tables.render("<!-- table:nosuch -->\n<!-- /table:nosuch -->\n", {"visibility": "| x |\n"}, "docs/x.md")
