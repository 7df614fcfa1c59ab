"""The README stays one screen, and the docs/ pages build with mkdocs, link to what exists and are all in the nav."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README_LIMIT = 10_240  # bytes

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), images left out
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def prose(text: str) -> str:
    """``text`` without fenced code blocks, whose brackets are not links."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor mkdocs (Python-Markdown's toc) gives a heading; GitHub's agrees for the headings linked here."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text)  # code and emphasis marks; underscores stay, as in both slugs
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(prose(page.read_text()))}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]  # relative: no scheme (http:, mailto:)


def nav_pages() -> list[str]:
    """The page files named in mkdocs.yml's nav (``- Title: page.md`` lines)."""
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:", 1)[1]
    return re.findall(r"^\s+-\s+(?:[^:\n]+:\s+)?(\S+\.md)\s*$", nav, re.M)


def test_readme_fits_one_screen():
    size = README.stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it under {README_LIMIT} and move the rest to docs/"


def test_docs_build_strict(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and file.parent == DOCS and anchor not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_page_is_in_the_nav():
    listed = nav_pages()
    assert len(listed) == len(set(listed)), f"a page is listed twice in mkdocs.yml's nav: {listed}"
    missing = sorted({p.name for p in PAGES} - set(listed))
    assert not missing, f"docs pages missing from mkdocs.yml's nav: {missing}"
    absent = sorted(set(listed) - {p.name for p in PAGES})
    assert not absent, f"mkdocs.yml's nav lists pages that do not exist: {absent}"


def test_the_readme_links_every_docs_page():
    linked = {Path(target.partition("#")[0]).name for target in links(README) if target.startswith("docs/")}
    assert {p.name for p in PAGES} <= linked, f"README.md does not link {sorted({p.name for p in PAGES} - linked)}"
