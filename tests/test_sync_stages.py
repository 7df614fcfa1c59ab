"""benchmarks/sync_stages.py: the placement a seeded edit is known to have reads the mark there, a placement a tile
off does not, and the summary its docs table (benchmarks/readme_tables.py) renders."""
from __future__ import annotations

import random

import pytest
from PIL import Image

import wmark
from conftest import benchmark_script
from wmark.interface.defaults import DEFAULT_FPR
from wmark.io.image import read_image
from wmark.sync.reframe import Reframe
from wmark.sync.search import Pose


@pytest.fixture(scope="module")
def script():
    return benchmark_script("sync_stages")


@pytest.fixture(scope="module")
def marked(photo, tmp_path_factory):
    """The fixture photo at 768x432, marked by the default at its card's strength."""
    folder = tmp_path_factory.mktemp("sync_stages")
    built = folder / "photo.png"
    Image.open(photo).convert("RGB").resize((768, 432), Image.LANCZOS).save(built)
    marker = wmark.load()
    marker.embed_file(built, folder / "marked.png", message="stages")
    return marker, folder / "marked.png"


@pytest.mark.parametrize("edit", ["crop50", "screenshot"])
def test_the_true_placement_of_an_edit_reads_the_mark_and_one_a_tile_off_does_not(script, marked, tmp_path, edit,
                                                                                  one_torch_thread):
    marker, path = marked
    image = Image.open(path).convert("RGB")
    transform, jpeg, (area, degrees, scale) = script.EDITS[edit]
    box = script._box(image, area, random.Random("seed"))
    received = script.saved(transform(image, random.Random("seed")), tmp_path / "edited.jpg", jpeg or 95)
    x = read_image(received).rgb
    placed = script.true_placement(marker, (image.height, image.width), tuple(x.shape[-2:]), box, degrees, scale)
    off = Reframe(placed.matrix, (placed.offset[0] + 1, placed.offset[1]), placed.rows, placed.cols, placed.height,
                  placed.width, placed.zoom)
    reads = [marker.decision.extract(marker.reader.image(x, Pose(reframe=where)), None, DEFAULT_FPR, 1)
             for where in (placed, off)]
    assert (reads[0].detected, reads[0].message) == (True, "stages")
    assert not reads[1].detected


def test_the_summary_counts_the_losses_of_the_search_and_the_table_renders_them(script):
    record = {"template": False, "peaks": 2.0, "peaks_png": 6.0, "at_truth": True, "exact": False, "seconds": 2.0}
    read = {**record, "template": True, "peaks": 5.0, "exact": True, "seconds": 1.0}
    summary = script.summarize({"768x512": {"a": {"crop50": record, "screenshot": read},
                                            "b": {"crop50": read, "screenshot": read}}})
    assert summary["crop50, 768x512"] == {"photos": 2, "template": 1, "at_truth": 2, "exact": 1, "lost_by_search": 1,
                                          "lost_by_search_template": 1, "median_peaks": 3.5, "median_peaks_png": 6.0,
                                          "median_seconds": 1.5}
    tables = benchmark_script("readme_tables")
    table = tables.sync_stages_markdown({"settings": {"photos": ["a", "b"], "model": "m", "fpr": 1e-6},
                                         "summary": summary})
    assert "| crop50 | 768×512 | 1 | 2 | 1 | 1 (1) | 3.5 (6.0) | 1.50 |" in table
