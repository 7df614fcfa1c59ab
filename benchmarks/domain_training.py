"""Checkpoints trained through their embedding domain against the default, at equal visibility (issue 40, item 2).

    python benchmarks/domain_training.py [--models mbrs-64-tiled,checkpoints/training/mbrs-64-tiled-flip]
        [--val ../shared/data/val] [--long-sides 768,1224] [--flip 0.55] [--out benchmarks/results/domain_training.json]

For each long side, the validation photos are resized to it (Lanczos). Each model's strength is set so that the
median FLIP ratio to a JPEG 75 re-save, on the whole photos, is ``--flip``
(:func:`wmark.train.validate.calibrate_flip_strength`, the rule ``wmark train --target-flip`` exports with); then
:func:`wmark.train.validate.validate` marks every photo through the model's domain with the same seeded codewords
and reads it as received (no search) after JPEG 50, WebP 50 and a halving kept small: the mean bit accuracy of
the codeword. So the models are compared at the same visibility on the same photos and edits. torch runs on one
thread. Writes ``--out`` and prints the docs' table (benchmarks/readme_tables.py renders it).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from readme_tables import domain_training_markdown  # a sibling script
from wmark import zoo
from wmark.domain import Domain
from wmark.io.image import from_uint8, list_images
from wmark.train.validate import DOMAIN_VALIDATION_ATTACKS, calibrate_flip_strength, validate

ROOT = Path(__file__).resolve().parents[1]


def resized(photos: list[Path], long_side: int) -> list[torch.Tensor]:
    """The photos at ``long_side`` px on their long side (Lanczos), as (1, 3, H, W) floats."""
    images = []
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        scale = long_side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        images.append(from_uint8(np.asarray(image))[None])
    return images


def measure(name: str, images: list[torch.Tensor], flip: float) -> dict:
    card = zoo.find_card(ROOT / name if (ROOT / name).is_dir() else name)  # a folder relative to the repository
    model, domain = zoo.load_model(card).eval(), Domain.from_dict(card.data["domain"])
    started = time.perf_counter()
    strength = calibrate_flip_strength(model, images, flip, domain).strength
    metrics = validate(model, images, strength, DOMAIN_VALIDATION_ATTACKS, domain=domain)
    return {"model": card.name, "card_strength": card.data["strength"], "strength": round(strength, 4),
            **{key: round(value, 4) for key, value in metrics.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mbrs-64-tiled,checkpoints/training/mbrs-64-tiled-flip")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--long-sides", default="768,1224", help="1224 px: about 1 MP at 3:2")
    parser.add_argument("--flip", type=float, default=0.55)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "domain_training.json")
    args = parser.parse_args()
    photos = list_images(args.val)
    rows = []
    for long_side in map(int, args.long_sides.split(",")):
        images = resized(photos, long_side)
        for name in args.models.split(","):
            rows.append({"long_side": long_side, **measure(name, images, args.flip)})
            print(json.dumps(rows[-1]), flush=True)
    result = {"settings": {"models": args.models.split(","), "photos": [p.name for p in photos], "flip": args.flip,
                           "attacks": list(DOMAIN_VALIDATION_ATTACKS), "torch_threads": 1}, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(domain_training_markdown(result))


if __name__ == "__main__":
    main()
