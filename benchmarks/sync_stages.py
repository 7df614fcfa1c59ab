"""Where a crop or screenshot of a small photo is lost: the template, the placement search, or the mark itself
(issue 39).

    python benchmarks/sync_stages.py [--val ../shared/data/val] [--photos N] [--sizes 768x512,1mp]
        [--out benchmarks/results/sync_stages.json]

A read of a crop takes three stages (:mod:`wmark.sync.reframe`): the template's grid is found
(:func:`wmark.sync.template.find`), a placement of the picture in the marked frame is chosen among the hypotheses
the grid leaves (:func:`wmark.sync.reframe.search`), and the canvas so placed is decoded. For each validation photo,
built at each size as :mod:`small_photos` builds it and marked through the public API at the card's strength, each
of :data:`EDITS` is made with the same seeded placements as the small-photo benchmark, and the benchmark records:

- ``template``: whether a grid within :data:`PITCH_SLACK` of the true pitch of the band the template is locked to is
  among those found;
- ``peaks`` and ``peaks_png``: the median whitened magnitude of the four gratings' peaks in the received picture (the
  mean bin is 1; a pair needs 2.5 and 2.0 to be found, :data:`wmark.sync.template.MIN_PEAK`) with the edit's JPEG and
  without it, the geometry the same;
- ``at_truth``: whether the picture warped onto the marked frame by the placement its edit is known to have (the crop
  box, turn and scale drawn from the seed) is detected with the right message by either look a search takes
  (:meth:`wmark.watermarker.reader.Reader.image_reads`), at the false-positive rate and Bonferroni factor of the
  whole ``sync`` search (:attr:`wmark.sync.search.Level.hypotheses`, times the looks);
- ``exact``: whether the default search reads the message (``extract`` as a user calls it), and its seconds.

A photo read ``at_truth`` but not ``exact`` was lost by the search: its template or its placement. One not read
``at_truth`` was lost by the mark itself, which a search cannot mend. Writes ``--out`` with the settings, the
per-photo records and the summary, and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import wmark
from small_photos import MESSAGE, PHOTO_QUALITY, SIZES, _box, _crop, _screenshot, machine, photos  # a sibling
from wmark.domain.template import pattern
from wmark.interface.defaults import DEFAULT_FPR
from wmark.io.image import from_uint8, read_image
from wmark.sync import reframe, search, template
from wmark.sync.search import Pose

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "sync_stages.json"
EDITS = {  # name: (edit, JPEG quality, (share of the area kept, degrees turned, scale)), as small_photos.EDITS
    "crop50": (_crop(0.5), None, (0.5, 0.0, 1.0)),
    "screenshot": (_screenshot, 70, (0.8, 1.0, 0.8)),
}
PITCH_SLACK = 0.03
"""Relative error of pitch within which a found grid counts as the template's."""


def true_placement(marker, frame: tuple[int, int], received: tuple[int, int], box: tuple[int, int, int, int],
                   degrees: float, scale: float) -> reframe.Reframe:
    """The placement of a picture cut from a ``frame`` (height, width) at ``box``, turned by ``degrees`` about its
    centre as Pillow's ``rotate`` turns it and resized by ``scale`` to ``received`` (height, width): received pixel q
    lies at tile ``D R q / scale + D (c - R c + corner)``, with D the template grid's tiles per pixel, R the turn and
    c the box's centre."""
    _, grid, _ = marker.domain.sync(*frame, marker.model.size)
    per_x, per_y = grid.cols / frame[1], grid.rows / frame[0]
    turn = math.radians(degrees)
    cos, sin = math.cos(turn), math.sin(turn)
    cx, cy = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    matrix = ((per_x * cos / scale, -per_x * sin / scale), (per_y * sin / scale, per_y * cos / scale))
    offset = (per_x * (cx - (cos * cx - sin * cy) + box[0]), per_y * (cy - (sin * cx + cos * cy) + box[1]))
    finest = marker.domain.sync_bands()[0][1].tiles
    zoom = max(1, round(finest / max(grid.rows, grid.cols)))
    return reframe.Reframe(matrix, offset, grid.rows, grid.cols, *received, zoom)


@torch.no_grad()
def peaks(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Median whitened magnitude, in ``x``'s spectrum as :func:`wmark.sync.template.find` sees it, at the four
    strongest peaks of ``reference`` (the template alone, edited as ``x`` was; within a bin)."""
    white = template._whitened(torch.fft.rfft2(template._prepared(x)).abs())
    spectrum = torch.fft.rfft2(template._prepared(reference)).abs()
    spectrum[0, 0] = 0
    values = []
    for _ in range(4):
        row, col = divmod(int(spectrum.argmax()), spectrum.shape[1])
        rows = [(row + d) % white.shape[0] for d in (-1, 0, 1)]
        cols = [c for c in (col - 1, col, col + 1) if 0 <= c < white.shape[1]]
        values.append(float(white[rows][:, cols].max()))
        spectrum[max(0, row - 3):row + 4, max(0, col - 3):col + 4] = 0
    return round(statistics.median(values), 2)


def saved(image: Image.Image, path: Path, jpeg: int | None) -> Path:
    image.save(path, quality=jpeg) if jpeg else image.save(path)
    return path


def one(marker, built: Path, work: Path, seed: str) -> dict:
    """Mark ``built``, then per edit: the template found, its peaks, the read at the true placement and the search's."""
    marked = work / f"{built.stem}.marked.png"
    marker.embed_file(built, marked, message=MESSAGE)
    image = Image.open(marked).convert("RGB")
    frame = (image.height, image.width)
    _, grid, _ = marker.domain.sync(*frame, marker.model.size)
    gratings = pattern(*frame, grid.rows, grid.cols)[0, 0]
    gratings = Image.fromarray(((gratings / 8 + 0.5).clamp(0, 1) * 255).round().byte().numpy()).convert("RGB")
    bound = search.level("sync").hypotheses
    record = {}
    for edit, (transform, jpeg, (area, degrees, scale)) in EDITS.items():
        rng_seed = f"{seed}/{edit}"
        box = _box(image, area, random.Random(rng_seed))  # the box the edit draws first from the same seed
        path = saved(transform(image, random.Random(rng_seed)), work / f"{built.stem}.{edit}.{'jpg' if jpeg else 'png'}",
                     jpeg)
        png = saved(transform(image, random.Random(rng_seed)), work / f"{built.stem}.{edit}.png", None)
        reference = from_uint8(np.asarray(transform(gratings, random.Random(rng_seed))))[None]
        x, x_png = read_image(path).rgb, read_image(png).rgb
        fits = template.find(x, reframe.plausible(marker.domain, marker.model.size, *x.shape[-2:]))
        true_pitch = max(frame[1] / grid.cols, frame[0] / grid.rows) * scale
        placed = true_placement(marker, frame, tuple(x.shape[-2:]), box, degrees, scale)
        looks = marker.reader.image_reads(x)  # each look is read, and the factor counts each, as in a search
        at_truth = [marker.decision.extract(look(Pose(reframe=placed)), None, DEFAULT_FPR, bound * len(looks))
                    for look in looks]
        started = time.perf_counter()
        read = marker.extract(path)
        record[edit] = {"template": any(abs(max(fit.pitch()) / true_pitch - 1) <= PITCH_SLACK for fit in fits),
                        "peaks": peaks(x, reference), "peaks_png": peaks(x_png, reference),
                        "at_truth": any(found.detected and found.message == MESSAGE for found in at_truth),
                        "exact": read.detected and read.message == MESSAGE,
                        "seconds": round(time.perf_counter() - started, 2)}
    return record


def summarize(records: dict) -> dict:
    summary = {}
    for size, by_photo in records.items():
        rows = list(by_photo.values())
        for edit in EDITS:
            found = [r[edit] for r in rows]
            summary[f"{edit}, {size}"] = {
                "photos": len(found), "template": sum(f["template"] for f in found),
                "at_truth": sum(f["at_truth"] for f in found), "exact": sum(f["exact"] for f in found),
                "lost_by_search": sum(f["at_truth"] and not f["exact"] for f in found),
                "lost_by_search_template": sum(f["at_truth"] and not f["exact"] and not f["template"] for f in found),
                "median_peaks": statistics.median(f["peaks"] for f in found),
                "median_peaks_png": statistics.median(f["peaks_png"] for f in found),
                "median_seconds": statistics.median(f["seconds"] for f in found)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--photos", type=int, default=None, help="only the first N photos (smoke runs)")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"a subset of {','.join(SIZES)}")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(1)  # see small_photos.py: one thread reads fastest on this shared machine
    marker, records = wmark.load(), {}
    chosen, sizes = photos(args.val, None, args.photos), args.sizes.split(",")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for size in sizes:
            for key, source in chosen.items():
                built = work / f"{Path(key).stem}.{size}.jpg"
                SIZES[size](Image.open(source).convert("RGB")).save(built, quality=PHOTO_QUALITY)
                records.setdefault(size, {})[key] = one(marker, built, work, f"{key}/{size}")
                print(size, key, records[size][key], flush=True)
    report = {"settings": {"model": marker.name, "message": MESSAGE, "edits": list(EDITS), "sizes": sizes,
                           "photos": list(chosen), "fpr": DEFAULT_FPR, "factor": search.level("sync").hypotheses,
                           "seconds": round(time.perf_counter() - started)},
              "machine": machine(), "summary": summarize(records), "records": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
