"""Size-aware bands: which middle band carries the default's message on small photos, and at what visibility
(issue 39).

    python benchmarks/size_bands.py [--val ../shared/data/val] [--sizes 768x512,1mp] [--variants none,8@0.6]
        [--out benchmarks/results/size_bands.json] [--write-card 8@0.6]

On a 768x512 photo the default's fine band has tiles of 48 px, which JPEG 50, WebP 50 or a halving leave little of,
and its coarse band has 6 tiles. Each variant adds one band of ``TILES@WEIGHT`` to the card's two (:data:`CORE`),
embedded and read only in photos whose long side is at most :data:`UP_TO` px (:class:`wmark.domain.Band`). For each
variant and size, the validation photos are built as :mod:`small_photos` builds them, marked through the public API
at the card's strength, edited by each of :data:`EDITS` (:func:`small_photos.edit_file`) and read with the default
search; a read is exact when it detects the mark and gives the message. Median PSNR and FLIP ratio (to a JPEG 75
re-save) compare each marked file with the built photo. After :data:`BAND_EDITS`, each band's own share of right
bits is recorded as well (:meth:`wmark.domain.Domain.band_means`).

Writes ``--out`` with the settings, the per-photo reads and the summary, and prints the summary. ``--write-card
VARIANT`` stores that variant's bands in the default card's domain, its video weight 0 (video frames are marked as
before, :mod:`video_domain`); the card's presence threshold must then be measured again (``presence.py``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import wmark
from small_photos import MESSAGE, PHOTO_QUALITY, SIZES, edit_file, machine, photos, quality  # a sibling script
from wmark import zoo
from wmark.io.image import read_image

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "size_bands.json"
DEFAULT = "mbrs-64-tiled"
CORE = [{"tiles": 16, "weight": 0.6}, {"tiles": 3, "weight": 1.0}]
"""The default's bands before this study: a fine band of 16 tiles along the long side and a coarse one of 3."""
UP_TO = 1400
"""Long side (px) up to which the middle band is embedded (and read): photos of about 1 MP at 16:9, 3:2 or 4:3 (1333,
1225 and 1155 px) and smaller; a 2 MP photo (1732 px at 3:2), where the fine band's tiles are 108 px, is marked and
read as before. Video frames never carry it (:data:`VIDEO_WEIGHTS`)."""
VIDEO_WEIGHTS = [0.6, 2.0, 0.0]
"""The card's video band weights with the middle band left out of video frames."""
EDITS = ("none", "jpeg50", "webp50", "half", "long720+jpeg80", "median3", "crop50")
BAND_EDITS = ("jpeg50", "webp50", "half")
"""Edits after which each band's own share of right bits is recorded (read as received, without a search)."""
VARIANTS = ("none", "8@0.6")
CHOSEN = "8@0.6"
"""The variant the default's card holds (``--write-card``): of those measured, the one that read the most photos at
768x512 within the visibility bar (see the note of issue 39)."""


def bands(variant: str) -> list[dict]:
    """The card's bands plus the variant's ``TILES@WEIGHT`` band (``none``: the card's alone)."""
    if variant == "none":
        return list(CORE)
    tiles, weight = variant.split("@")
    return [*CORE, {"tiles": int(tiles), "weight": float(weight), "up_to": UP_TO}]


def marker(variant: str) -> wmark.Watermarker:
    card = zoo.find_card(DEFAULT)
    domain = {**card.domain, "bands": bands(variant)}
    weights = VIDEO_WEIGHTS[:len(domain["bands"])]
    return wmark.Watermarker(card.with_domain(domain, video_domain={**card.video_domain, "band_weights": weights}),
                             device="cpu")


def measure(variant: str, sources: dict[str, Path], sizes: list[str], edits: list[str], work: Path) -> dict:
    """Per size and photo: PSNR, FLIP ratio and whether each edit reads exactly."""
    marking, records = marker(variant), {}
    for size in sizes:
        records[size] = {}
        for key, source in sources.items():
            photo = work / f"{source.stem}-{size}.jpg"
            if not photo.is_file():
                SIZES[size](Image.open(source).convert("RGB")).save(photo, quality=PHOTO_QUALITY)
            marked = work / f"{source.stem}-{size}-{variant.replace('@', '_')}.png"
            codeword = marking.embed_file(photo, marked, message=MESSAGE).codeword
            reads, band_bits = {}, {}
            for edit in edits:
                edited = edit_file(marked, edit, f"{key}/{size}/{edit}")
                found = marking.extract(edited)
                reads[edit] = found.detected and found.message == MESSAGE
                if edit in BAND_EDITS:
                    band_bits[edit] = bands_right(marking, edited, codeword)
            records[size][key] = {**quality(photo, marked), "reads": reads, "band_bits": band_bits}
            print(variant, size, key, records[size][key], flush=True)
    return records


@torch.no_grad()
def bands_right(marking: wmark.Watermarker, path: Path, codeword: str) -> list[float]:
    """Per band of the marker's domain, the share of the codeword's bits its part means alone get right, for the
    file at ``path`` read as received (:meth:`wmark.domain.Domain.band_means`)."""
    x = read_image(path).rgb
    expected = torch.tensor([int(bit) for bit in codeword]) * 2 - 1
    return [round(float((means.flatten().sign() == expected).float().mean()), 3)
            for means, _ in marking.domain.band_means(marking.model, x)]


def summarize(records: dict) -> dict:
    return {size: {"photos": len(per_photo),
                   "median_psnr": round(statistics.median(r["psnr"] for r in per_photo.values()), 2),
                   "median_flip_ratio": round(statistics.median(r["flip_ratio"] for r in per_photo.values()), 3),
                   "exact": {edit: round(statistics.mean(r["reads"][edit] for r in per_photo.values()), 2)
                             for edit in next(iter(per_photo.values()))["reads"]},
                   "median_band_bits": {edit: [round(statistics.median(bits), 3) for bits in
                                               zip(*(r["band_bits"][edit] for r in per_photo.values()))]
                                        for edit in next(iter(per_photo.values()))["band_bits"]}}
            for size, per_photo in records.items()}


def write_card(variant: str) -> None:
    card = zoo.find_card(DEFAULT)
    data = json.loads((card.path / zoo.CARD).read_text())
    data["domain"]["bands"] = bands(variant)
    data["video_domain"]["band_weights"] = VIDEO_WEIGHTS[:len(data["domain"]["bands"])]
    note = (" Photos up to {} px on the long side also carry a middle band of {} tiles at weight {}; video frames do "
            "not (benchmarks/size_bands.py).")
    data["notes"] = data["notes"].split(" Photos up to ")[0]
    if variant != "none":
        data["notes"] += note.format(UP_TO, *variant.split("@"))
    (card.path / zoo.CARD).write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote the bands of {variant} into {card.path / zoo.CARD}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--photos", type=int, default=None, help="only the first N photos (smoke runs)")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"a subset of {','.join(SIZES)}")
    parser.add_argument("--edits", default=",".join(EDITS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--write-card", metavar="VARIANT", help="store this variant's bands in the default's card")
    args = parser.parse_args()
    if args.write_card:
        write_card(args.write_card)
        return
    torch.set_num_threads(1)  # see small_photos.py: one thread reads fastest on this shared machine
    sizes, edits, variants = args.sizes.split(","), args.edits.split(","), args.variants.split(",")
    sources = photos(args.val, None, args.photos)
    started, results = time.monotonic(), {}
    with tempfile.TemporaryDirectory() as folder:
        for variant in variants:
            results[variant] = measure(variant, sources, sizes, edits, Path(folder))
    summary = {variant: summarize(records) for variant, records in results.items()}
    report = {"settings": {"model": DEFAULT, "core": CORE, "up_to": UP_TO, "sizes": sizes, "edits": edits,
                           "message": MESSAGE, "photos": list(sources)},
              "machine": machine(), "seconds": round(time.monotonic() - started), "summary": summary,
              "records": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
