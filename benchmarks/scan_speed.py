"""Scan throughput with 1 and 2 workers, and false positives on >= 10,000 clean images.

    python benchmarks/scan_speed.py --val ../shared/data/val

Writes benchmarks/results/scan_speed.json. Speed: the validation photos (2-4 MP JPEGs) copied
to ``--files`` files in a temporary folder, scanned by ``wmark.scan.collection.run`` with the default model
and 1, then 2 worker processes (one torch thread each); files/s is timed from when the workers are
ready (their start-up is reported apart; the first run also starts the fork server). False
positives: the same photos plus random crops (20-100 % of each side) rescaled to a random long side
of 256-2048 px and rounded to 8 bits, generated in memory and passed to the scan's own detection
function at the default threshold (FPR 1e-6) and search level (``--search``, the default one unless told; with a
search other than ``off`` each variant is also turned by a random angle within 10 degrees, black corners).
``--false-positives-only`` counts them alone, into false_positives_<model>.json (``off``) or
false_positives_<model>_search-<level>.json; with ``--seconds`` a count stops early and ``--resume`` goes on with it
(each item has its own seed, and the file records the weights' sha256 and that of the search's and domain's code and
the card's domain), so a count can span sessions; ``--workers N`` counts in N processes, in item order, saving the
count every few minutes.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import wmark.api
import wmark.domain
import wmark.models.inference
import wmark.sync
import wmark.watermarker
from wmark.domain import rotation
from wmark.interface.defaults import DEFAULT_FPR
from wmark.io.image import from_uint8, list_images
from wmark.pipeline import MIN_SIDE, quantize
from wmark.scan.collection import run
from wmark.scan.job import ScanConfig, detect_image, markers
from wmark.sync import DEFAULT_SEARCH

RESULTS = Path(__file__).parent / "results"


def speed(photos: list[Path], files: int, workers: int, work: Path) -> dict:
    folder = work / "files"
    if not folder.exists():
        folder.mkdir()
        for i in range(files):
            shutil.copy(photos[i % len(photos)], folder / f"{i:04}_{photos[i % len(photos)].name}")
    summary = run([str(folder)], ScanConfig(), workers=workers, stdout=io.StringIO())
    assert summary.errors == 0 and summary.scanned == files
    return {"workers": workers, **summary.to_dict()}


def _variant(photo: torch.Tensor, generator: torch.Generator, turn: bool = False) -> torch.Tensor:
    """A random crop of ``photo`` (1, 3, H, W), rescaled to a random long side, ``turn``: turned by a random angle
    within 10 degrees; on the 8-bit grid."""
    height, width = photo.shape[-2:]
    fractions = 0.2 + 0.8 * torch.rand(2, generator=generator)
    crop_h, crop_w = max(MIN_SIDE, int(height * fractions[0])), max(MIN_SIDE, int(width * fractions[1]))
    top = int(torch.randint(height - crop_h + 1, (1,), generator=generator))
    left = int(torch.randint(width - crop_w + 1, (1,), generator=generator))
    crop = photo[..., top:top + crop_h, left:left + crop_w]
    long_side = int(torch.randint(256, 2049, (1,), generator=generator))
    scale = long_side / max(crop_h, crop_w)
    size = (max(MIN_SIDE, round(crop_h * scale)), max(MIN_SIDE, round(crop_w * scale)))
    variant = F.interpolate(crop, size=size, mode="bilinear", antialias=True, align_corners=False)
    if turn:
        variant = rotation.undo(variant, float(20 * torch.rand(1, generator=generator) - 10), *size)
    return quantize(variant)


def search_code(domain: dict) -> str:
    """sha256 of the search's and the domain's code (wmark/sync/*.py, wmark/domain/*.py, the poses, looks and
    decisions of wmark/watermarker/, the API that wires them, and the weights' inference form) and of the card's
    ``domain``, so that a count resumes only under the reading that began it."""
    digest = hashlib.sha256(json.dumps(domain, sort_keys=True).encode())
    reading = Path(wmark.watermarker.__file__).parent
    for path in [*sorted(Path(wmark.sync.__file__).parent.glob("*.py")),
                 *sorted(Path(wmark.domain.__file__).parent.glob("*.py")),
                 *(reading / name for name in ("search.py", "reader.py", "decision.py")),
                 Path(wmark.api.__file__), Path(wmark.models.inference.__file__)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


_WORKER: tuple = ()
"""What :func:`_item` reads: (models, pictures, seed, search), set by :func:`_load` in each process."""


def _load(photos: list[Path], seed: int, search: str) -> None:
    """Set up this process for :func:`_item`: the default model, the decoded photos, one torch thread."""
    torch.set_num_threads(1)  # one item at a time gains little from threads, and spinning ones stall a busy CPU
    global _WORKER
    pictures = [from_uint8(np.asarray(Image.open(p).convert("RGB")))[None] for p in photos]
    _WORKER = (markers((None,), "cpu"), pictures, seed, search)


def _item(i: int) -> tuple[int, float, bool]:
    """(i, p-value, detected) of clean item ``i``: a photo, or a variant drawn from the item's own seed."""
    models, pictures, seed, search = _WORKER
    generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
    x = pictures[i] if i < len(pictures) else _variant(pictures[i % len(pictures)], generator, search != "off")
    result = detect_image(models, x, search=search)[0]
    return i, result["p_value"], result["detected"]


SAVE_EVERY = 300.0
"""Seconds between the snapshots a long count hands to ``save``."""


def false_positives(photos: list[Path], items: int, seed: int, seconds: float | None = None,
                    done: dict | None = None, search: str = DEFAULT_SEARCH, workers: int = 1,
                    save: Callable[[dict], None] | None = None) -> dict:
    """Detections among ``items`` clean items (fewer when the ``seconds`` budget runs out first: ``items`` in the
    result says how many were tried). Item ``i`` is drawn from its own seed, so a count ``done`` by an earlier run
    of the same checkpoint (its weights' sha256) and seed goes on where it stopped. ``workers`` processes detect
    items side by side, in order, so the items counted are always the first ones; every :data:`SAVE_EVERY` seconds
    the count so far goes to ``save``."""
    _load(photos, seed, search)
    models = _WORKER[0]
    sha256, code = models[0].card.data["sha256"], search_code(models[0].card.domain)
    if done is not None and ((done.get("sha256"), done.get("seed"), done.get("search", "off"), done.get("search_code"))
                             != (sha256, seed, search, code)):
        raise SystemExit("the count to resume is of other weights, seed, search or search code; start it again "
                         "without --resume")
    done = done or {"items": 0, "which": [], "min_p_value": 1.0, "valid_codewords": 0, "seconds": 0.0}
    detected, lowest, valid, tried = list(done["which"]), done["min_p_value"], done["valid_codewords"], done["items"]
    start = saved = time.perf_counter()

    def counted() -> dict:
        return {"model": models[0].name, "sha256": sha256, "fpr": DEFAULT_FPR, "items": tried, "target": items,
                "photos": len(photos), "detected": len(detected), "which": detected, "min_p_value": lowest,
                "valid_codewords": valid, "seed": seed, "search": search, "search_code": code,
                "seconds": round(done["seconds"] + time.perf_counter() - start, 1)}

    todo = range(done["items"], items)
    pool = multiprocessing.get_context("spawn").Pool(workers, _load, (photos, seed, search)) if workers > 1 else None
    try:
        for i, p_value, found in (pool.imap(_item, todo) if pool else map(_item, todo)):
            tried, lowest, valid = i + 1, min(lowest, p_value), valid + (p_value < 1)
            if found:
                detected.append({"item": i, "photo": photos[i % len(photos)].name, "p_value": p_value})
            now = time.perf_counter()
            if seconds is not None and now - start > seconds:
                break
            if save is not None and now - saved > SAVE_EVERY:
                save(counted())
                saved = now
    finally:
        if pool:
            pool.terminate()
    return counted()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", default="../shared/data/val")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, help="time budget of the false-positive count")
    parser.add_argument("--search", default=DEFAULT_SEARCH, help="search level of the false-positive count")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes of the false-positive count (one torch thread each)")
    parser.add_argument("--false-positives-only", action="store_true",
                        help="skip the speed runs; write results/false_positives_<default model>.json")
    parser.add_argument("--resume", action="store_true",
                        help="with --false-positives-only: go on with the committed count of the same weights and seed")
    args = parser.parse_args()
    photos = list_images(args.val)
    if args.false_positives_only:
        suffix = "" if args.search == "off" else f"_search-{args.search}"
        path = RESULTS / f"false_positives_{markers((None,), 'cpu')[0].name}{suffix}.json"
        done = json.loads(path.read_text()) if args.resume and path.exists() else None

        def save(counted: dict) -> None:
            path.write_text(json.dumps(counted, indent=2) + "\n")
        counted = false_positives(photos, args.items, args.seed, args.seconds, done, args.search, args.workers, save)
        save(counted)
        print(json.dumps(counted, indent=2))
        return
    sizes = [Image.open(p).size for p in photos]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as work:
        speeds = [speed(photos, args.files, workers, Path(work)) for workers in (1, 2)]
    result = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_at_start": [round(v, 2) for v in load]},
        "speed": {"files": args.files, "megapixels": [round(min(w * h for w, h in sizes) / 1e6, 2),
                                                      round(max(w * h for w, h in sizes) / 1e6, 2)],
                  "runs": speeds},
        "false_positives": false_positives(photos, args.items, args.seed, search=args.search),
    }
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scan_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
