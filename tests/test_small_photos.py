"""benchmarks/small_photos.py: the two photo sizes, the seeded edits, a peer's file round trip, and the summary its
docs table (benchmarks/readme_tables.py) renders."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import benchmark_script


@pytest.fixture(scope="module")
def script():
    return benchmark_script("small_photos")


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_sizes_are_768x512_and_one_megapixel_with_the_aspect_kept(script):
    assert script.fixed_size(noise_image(900, 700)).size == (768, 512)
    assert script.fixed_size(noise_image(700, 900)).size == (512, 768)
    width, height = script.one_megapixel(noise_image(2048, 1280)).size
    assert abs(width * height - 1e6) < 2e3 and abs(width / height - 1.6) < 0.005


def test_edits_are_seeded_and_saved_as_a_user_would_save_them(script, tmp_path):
    marked = tmp_path / "marked.png"
    noise_image(768, 512).save(marked)
    for edit, (_, (form, _)) in script.EDITS.items():
        first = script.edit_file(marked, edit, "photo/768x512/" + edit)
        again = np.asarray(Image.open(first)).copy()
        assert Image.open(first).format == form
        assert np.array_equal(np.asarray(Image.open(script.edit_file(marked, edit, "photo/768x512/" + edit))), again)
    assert Image.open(tmp_path / "marked.half.png").size == (384, 256)
    assert Image.open(tmp_path / "marked.long720+jpeg80.jpeg").size == (720, 480)
    crop = Image.open(tmp_path / "marked.crop50.png").size
    assert abs(crop[0] * crop[1] / (768 * 512) - 0.5) < 0.005
    grey = (np.asarray(Image.open(tmp_path / "marked.occlusion15.png")) == script.GREY).all(-1).mean()
    assert abs(grey - 0.15) < 0.005


def test_a_peer_reads_its_own_unedited_file(script, tmp_path):
    pytest.importorskip("imwatermark")
    photo = tmp_path / "photo.jpg"
    noise_image(384, 256, seed=1).save(photo, quality=95)
    peer = script.PeerMethod("imwatermark:dwtDctSvd")
    mark = peer.mark(photo, tmp_path / "marked.png", "photo/768x512/dwtDctSvd")
    assert mark == peer.mark(photo, tmp_path / "again.png", "photo/768x512/dwtDctSvd")
    read = peer.read(tmp_path / "marked.png", mark)
    assert read["exact"] and read["bit_acc"] == 1.0


def test_the_summary_and_its_table_state_the_photo_count():
    script, tables = benchmark_script("small_photos"), benchmark_script("readme_tables")
    methods = ["mbrs-64-tiled", "imwatermark:dwtDct", "imwatermark:dwtDctSvd"]
    settings = {"model": methods[0], "message": "wmark-039", "methods": methods, "sizes": ["768x512"],
                "edits": ["none", "hflip"], "must_read": ["hflip"]}

    def record(exact: bool, detected: bool) -> dict:
        reads = {"none": {"exact": True, "bit_acc": 1.0, "seconds": 0.1},
                 "hflip": {"exact": exact, "bit_acc": 1.0 if exact else 0.5, "seconds": 0.3}}
        return {"768x512": {"unmarked": {"detected": detected},
                            "methods": {m: {"psnr": 45.0, "flip_ratio": 0.5, "reads": reads} for m in methods}}}

    summary = script.summarize({"val/a.jpg": record(True, False), "unseen/b.jpg": record(False, True)}, settings)
    entry = summary["768x512"]
    assert entry["photos"] == 2 and entry["false_detections"] == 1
    assert entry["methods"]["imwatermark:dwtDct"]["edits"]["hflip"] == {"exact": 0.5, "bit_acc": 0.75,
                                                                         "median_seconds": 0.3}
    result = {"settings": settings | {"photos": ["val/a.jpg", "unseen/b.jpg"]}, "summary": summary,
              "machine": {"cpu_count": 2, "torch_threads": 1}}
    table = tables.small_photos_markdown(result)
    assert table.startswith("2 photos (1 validation, 1 unseen: a.jpg, b.jpg)")
    assert "| hflip † | 50% (0.750) | 50% (0.750) | 50% (0.750) |" in table
    assert "| false detections, unmarked photos | 1 of 2 | – | – |" in table
