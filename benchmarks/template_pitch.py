"""Template pitch: which band's grid the sync template should be locked to on small photos (issue 39).

    python benchmarks/template_pitch.py [--val ../shared/data/val] [--photos 6] [--variants finest,size-aware]
        [--out benchmarks/results/template_pitch.json] [--merge PART.json ...]

The template's gratings run at 10 and 11 cycles a tile along the diagonals of one band's grid
(:mod:`wmark.domain.template`). Locked to the finest band, they are fine on a small photo (48 px tiles at 768x512)
and JPEG removes them, so a crop saved as JPEG can no longer be placed; locked to a coarse band they sink into the
picture's own low frequencies. The variants embed it:

- ``finest``: on the finest band always (the rule before this benchmark);
- ``size-aware``: on the size-aware (8-tile) band wherever it is embedded, else the finest
  (:meth:`wmark.domain.Domain.sync`, the rule now).

A reader tries both bands whatever the variant. For each variant and size, the first ``--photos`` validation photos
are built as :mod:`small_photos` builds them, marked through the public API at the card's strength, edited by each
of :data:`EDITS` and read with the default search. A read is exact when it detects the mark and gives the message;
the template counts as found when :func:`wmark.sync.template.find` returns a grid within 3 % of the true pitch of
the band it was locked to. Median FLIP ratio (to a JPEG 75 re-save) compares each marked file with the built photo.
Writes ``--out`` with the settings, the per-photo records and the summary, and prints the summary. A run is long on
a CPU: variants may run as separate processes, each with its own ``--out``, and ``--merge`` joins their files into
``--out``.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import wmark
from small_photos import MESSAGE, PHOTO_QUALITY, SIZES, _crop, _screenshot, machine, photos, quality  # a sibling
from wmark.domain import Domain
from wmark.io.image import read_image
from wmark.sync import reframe, template

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "template_pitch.json"
VARIANTS = {"finest": Domain.finest, "size-aware": Domain.sync}
"""The rule each variant gives :meth:`wmark.domain.Domain.sync` while marking."""
EDITS = {  # name: (edit, JPEG quality or None for PNG); placements drawn from a seed of the photo and size
    "crop50": (_crop(0.5), None),
    "crop50+jpeg80": (_crop(0.5), 80),
    "crop80+jpeg70": (_crop(0.8), 70),
    "screenshot": (_screenshot, 70),
}
PITCH_SLACK = 0.03
"""Relative error of pitch within which a found grid counts as the template's."""


def found_template(path: Path, marker, true_pitch: float) -> bool:
    """Whether the template's grid is among those found in the file (pitch along the long side, within the slack)."""
    x = read_image(path).rgb
    fits = template.find(x, reframe.plausible(marker.domain, marker.model.size, *x.shape[-2:]))
    return any(abs(max(fit.pitch()) / true_pitch - 1) <= PITCH_SLACK for fit in fits)


def one(marker, built: Path, work: Path, key: str) -> dict:
    """Mark ``built``, then edit and read it: the quality and, per edit, the template found and the exact read."""
    marked = work / f"{built.stem}.marked.png"
    marker.embed_file(built, marked, message=MESSAGE)
    height, width = Image.open(built).size[::-1]
    band, grid, _ = marker.domain.sync(height, width, marker.model.size)
    record = {"band": band.tiles, **quality(built, marked), "edits": {}}
    for edit, (transform, jpeg) in EDITS.items():
        edited = transform(Image.open(marked).convert("RGB"), random.Random(f"{key}/{edit}"))
        path = work / f"{built.stem}.{edit}.{'jpg' if jpeg else 'png'}"
        edited.save(path, quality=jpeg) if jpeg else edited.save(path)
        scale = 0.8 if edit == "screenshot" else 1.0
        true_pitch = max(width / grid.cols, height / grid.rows) * scale
        started = time.perf_counter()
        read = marker.extract(path)
        record["edits"][edit] = {"template": found_template(path, marker, true_pitch),
                                 "exact": read.detected and read.message == MESSAGE,
                                 "seconds": round(time.perf_counter() - started, 2)}
    return record


def summarize(records: dict) -> dict:
    summary = {}
    for variant, by_size in records.items():
        for size, by_photo in by_size.items():
            rows = list(by_photo.values())
            entry = {"photos": len(rows),
                     "median_flip_ratio": round(statistics.median(r["flip_ratio"] for r in rows), 4),
                     "median_psnr": round(statistics.median(r["psnr"] for r in rows), 2)}
            for edit in EDITS:
                entry[f"{edit} template"] = sum(r["edits"][edit]["template"] for r in rows)
                entry[f"{edit} exact"] = sum(r["edits"][edit]["exact"] for r in rows)
            summary[f"{variant}, {size}"] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--merge", type=Path, nargs="+", help="join these runs' files into --out instead of running")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        report = {**parts[0], "records": {k: v for part in parts for k, v in part["records"].items()}}
        report["settings"]["variants"] = [v for part in parts for v in part["settings"]["variants"]]
        report["settings"]["seconds"] = sum(part["settings"]["seconds"] for part in parts)
        report["summary"] = summarize(report["records"])
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report["summary"], indent=1))
        return
    torch.set_num_threads(1)
    variants = args.variants.split(",")
    marker, records = wmark.load(), {}
    chosen = photos(args.val, None, args.photos)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for variant in variants:
            Domain.sync = VARIANTS[variant]
            for size, build in SIZES.items():
                for key, source in chosen.items():
                    built = work / f"{Path(key).stem}.{size}.jpg"
                    build(Image.open(source).convert("RGB")).save(built, quality=PHOTO_QUALITY)
                    record = one(marker, built, work, f"{key}/{size}")
                    records.setdefault(variant, {}).setdefault(size, {})[key] = record
                    print(variant, size, key, record, flush=True)
    report = {"settings": {"model": marker.name, "message": MESSAGE, "variants": variants,
                           "edits": list(EDITS), "photos": list(chosen),
                           "seconds": round(time.perf_counter() - started)},
              "machine": machine(), "summary": summarize(records), "records": records}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
