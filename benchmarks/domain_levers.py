"""The invisible-default issue's lever comparison: which embedding domain keeps the most robustness
for the same visibility.

    python benchmarks/domain_levers.py [--val ../shared/data/val] [--flip 0.5] [--photos N] [--only NAME ...]

Every configuration runs a committed checkpoint's weights in another :class:`wmark.domain.Domain`
(luma projection, JND attenuation, a tiled grid, bands, codeword classes). Each is set to the one
strength at which the median over photos of mean FLIP, as a ratio to a JPEG 75 re-save of the same
photo (:mod:`wmark.perception.flip`), equals ``--flip``: FLIP is measured at two strengths on every
photo, a power law fitted per photo, and the strength whose fitted median meets the target is used.
So the comparison is at equal visibility, and robustness and PSNR show what each lever buys. For each
photo: PSNR and FLIP on the 8-bit marked image, and the bit accuracy of a random codeword after the
issue's attacks, applied with Pillow and PyAV outside wmark (`benchmarks/thresholds.py`'s, plus
thumbnails: a downscale to a long side of 1024 or 320 px, then JPEG 75). Medians over photos for
PSNR and FLIP, means for bit accuracy. Writes benchmarks/results/domain_levers.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from thresholds import ATTACKS as PILLOW_ATTACKS, ROOT, thumbnail
from visibility import jpeg_flip, marked, psnr
from wmark import Watermarker, pipeline, zoo
from wmark.io.image import from_uint8, to_uint8
from wmark.perception.calibrate import strength_for_flip
from wmark.perception.flip import mean_flip
from wmark.watermarker.embedder import message

RESULT = ROOT / "benchmarks" / "results" / "domain_levers.json"


ATTACKS = {name: PILLOW_ATTACKS[name] for name in
           ("none", "jpeg50", "resize0.5", "blur1.5", "h264crf28", "brightness1.3")}
ATTACKS.update({"thumb1024_jpeg75": thumbnail(1024), "thumb320_jpeg75": thumbnail(320)})

LUMA_JND = {"luma": True, "jnd": True}
FINE, COARSE = {"tiles": 16}, {"tiles": 3}
CONFIGS = {
    "whole frame (classic)": ("mbrs-64", {}),
    "luma": ("mbrs-64", {"luma": True}),
    "jnd": ("mbrs-64", {"jnd": True}),
    "luma + jnd": ("mbrs-64", {**LUMA_JND}),
    "grid 16": ("mbrs-64", {"bands": [FINE]}),
    "grid 16 + luma + jnd": ("mbrs-64", {"bands": [FINE], **LUMA_JND}),
    "grid 3 + luma + jnd, 3 classes": ("mbrs-64", {"bands": [COARSE], "classes": 3, **LUMA_JND}),
    "grid 16 (0.3) + 3 + luma + jnd, 3 classes": (
        "mbrs-64", {"bands": [{**FINE, "weight": 0.3}, COARSE], "classes": 3, **LUMA_JND}),
    "grid 16 (0.3) + 3 + luma + jnd, 3 classes, diffusion": (
        "mbrs-64-diffusion", {"bands": [{**FINE, "weight": 0.3}, COARSE], "classes": 3, **LUMA_JND}),
    "grid 16 (0.6) + 3 + luma + jnd, 3 classes, patterns (mbrs-64-tiled)": (
        "mbrs-64", {"bands": [{**FINE, "weight": 0.6}, COARSE], "classes": 3, "patterns": True, **LUMA_JND}),
}


def marker_for(model: str, domain: dict) -> Watermarker:
    card = zoo.find_card(model)
    return Watermarker(card.with_domain(domain), device="cpu")


def run(name: str, model: str, domain: dict, photos: list[Path], target_flip: float, seed: int) -> dict:
    marker = marker_for(model, domain)
    generator = torch.Generator().manual_seed(seed)
    images = [from_uint8(np.asarray(Image.open(p).convert("RGB")))[None] for p in photos]
    codewords = [torch.randint(0, 2, (marker.bits,), generator=generator) for _ in photos]
    residuals = [pipeline.residual(marker.model, x, message(c, 1, marker.device), marker.domain) for x, c in zip(images, codewords)]
    strength = strength_for_flip(images, residuals, target_flip).strength
    rows = []
    for photo, x, r, codeword in zip(photos, images, residuals, codewords):
        start = time.perf_counter()
        original, image = to_uint8(x[0]), marked(x, r, strength)
        flip = mean_flip(original, image)
        row = {"photo": photo.name, "psnr": round(psnr(image, original), 3), "flip": round(flip, 5),
               "flip_ratio": round(flip / jpeg_flip(photo), 4)}
        for attack_name, attack in ATTACKS.items():
            attacked = np.asarray(attack(Image.fromarray(image)).convert("RGB"))
            decoded = (marker.frame_logits(from_uint8(attacked)[None])[0] > 0).to(torch.uint8)
            row[attack_name] = round(float((decoded == codeword).float().mean()), 4)
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(name, row, file=sys.stderr)
    summary = {"model": model, "domain": marker.domain.to_dict(), "bits": marker.bits,
               "capacity_bytes": marker.code().capacity_bytes, "strength": round(strength, 4),
               "median_psnr": round(statistics.median(r["psnr"] for r in rows), 2),
               "min_psnr": round(min(r["psnr"] for r in rows), 2),
               "median_flip_ratio": round(statistics.median(r["flip_ratio"] for r in rows), 3)}
    summary.update({a: round(statistics.mean(r[a] for r in rows), 4) for a in ATTACKS})
    return {**summary, "rows": rows}


def levers_markdown(result: dict) -> str:
    """The comparison table of domain_levers.json."""
    attacks = result["attacks"]
    lines = [f"| domain (at median FLIP {result['flip_target']} × JPEG 75's) | text bytes | median PSNR | "
             + " | ".join(attacks) + " |", "|---" * (len(attacks) + 3) + "|"]
    for name, entry in result["configs"].items():
        lines.append(f"| {name} ({entry['model']}) | {entry['capacity_bytes']} | {entry['median_psnr']:.1f} dB | "
                     + " | ".join(f"{entry[a]:.3f}" for a in attacks) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--flip", type=float, default=0.5, help="median FLIP ratio to JPEG 75 to calibrate to")
    parser.add_argument("--photos", type=int, default=None, help="the first N photos only")
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    photos = sorted(args.val.glob("*.jpg"))[: args.photos]
    results = json.loads(RESULT.read_text()) if RESULT.exists() and args.only else {}
    configs = results.setdefault("configs", {})
    for name, (model, domain) in CONFIGS.items():
        if not args.only or name in args.only:
            configs[name] = run(name, model, domain, photos, args.flip, args.seed)
            RESULT.write_text(json.dumps(results, indent=2) + "\n")
    results.update(flip_target=args.flip, photos=[p.name for p in photos], attacks=list(ATTACKS))
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print(levers_markdown(results))


if __name__ == "__main__":
    main()
