"""Search cost against robustness: the default model's extraction with ``--search off`` and ``fast``.

    python benchmarks/search.py [--val ../shared/data/val] [-m NAME]

Each validation photo is marked with a random 9-byte message through ``Watermarker.embed`` (uint8 out), then
edited with Pillow alone: nothing, a horizontal flip, a 90-degree turn, a horizontal flip then JPEG 75. Each
edit is read with ``Watermarker.extract`` under both search levels: the share of exact messages, the mean
bit accuracy against the codeword under the transform found (the identity when none is), and the seconds an
extraction takes, on the marked edits and on the unmarked photo (where a search tries every hypothesis).
Writes benchmarks/results/search.json.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import wmark
from wmark.sync.dihedral import SEARCHES, UNDO
from wmark.train.data import image_files
from thresholds import ATTACKS, ROOT  # noqa: E402  (a sibling script)

RESULTS = Path(__file__).parent / "results"
EDITS = {
    "none": lambda im: im,
    "flip": lambda im: im.transpose(Image.FLIP_LEFT_RIGHT),
    "rotate90": lambda im: im.transpose(Image.ROTATE_90),
    "flip+jpeg75": lambda im: ATTACKS["jpeg75"](im.transpose(Image.FLIP_LEFT_RIGHT)),
}


def bit_accuracy(marker: wmark.Watermarker, image: Image.Image, transform: str, codeword: torch.Tensor) -> float:
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255
    decoded = (marker.frame_logits(UNDO[transform](x))[0] > 0).long()
    return float((decoded == codeword).float().mean())


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("-m", "--model", default=None, help="checkpoint (default: the image default)")
    args = parser.parse_args()
    marker = wmark.load(args.model, device="cpu")
    rng = random.Random(0)
    rows = []
    for photo in image_files(args.val):
        original = Image.open(photo).convert("RGB")
        message = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(9))
        codeword = marker.codeword(message).long()
        marked = marker.embed(original, message)
        for search in SEARCHES:
            found, seconds = timed(lambda: marker.extract(original, search=search))
            rows.append({"photo": photo.name, "edit": "unmarked", "search": search, "detected": found.detected,
                         "seconds": round(seconds, 3)})
            for edit, apply in EDITS.items():
                edited = apply(marked)
                found, seconds = timed(lambda: marker.extract(edited, search=search))
                rows.append({"photo": photo.name, "edit": edit, "search": search, "exact": found.message == message,
                             "transform": found.transform,
                             "bit_acc": round(bit_accuracy(marker, edited, found.transform, codeword), 4),
                             "seconds": round(seconds, 3)})
        print(photo.name, [(r["edit"], r["search"], r.get("exact", r.get("detected")), r["seconds"])
                           for r in rows if r["photo"] == photo.name], flush=True)
    summary = {}
    for search in SEARCHES:
        for edit in [*EDITS, "unmarked"]:
            picked = [r for r in rows if r["search"] == search and r["edit"] == edit]
            entry = {"photos": len(picked), "median_seconds": round(statistics.median(r["seconds"] for r in picked), 3)}
            if edit == "unmarked":
                entry["false_detections"] = sum(r["detected"] for r in picked)
            else:
                entry["exact"] = round(sum(r["exact"] for r in picked) / len(picked), 3)
                entry["bit_acc"] = round(statistics.mean(r["bit_acc"] for r in picked), 4)
            summary[f"{search}/{edit}"] = entry
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(
        {"model": marker.name, "searches": {k: list(v) for k, v in SEARCHES.items()}, "summary": summary,
         "rows": rows}, indent=2) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
