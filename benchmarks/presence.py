"""Calibrate each checkpoint's key-independent presence test (``mark_present``) on clean and marked photos.

    python benchmarks/presence.py [--data ../shared/data] [--write-cards]

The statistic is :func:`wmark.stats.logit_magnitude`, the median absolute decoder logit: it does not depend on
the message or the key, so it tells "no mark" from "a mark I cannot open". Clean items: every train and val
photo, each as 4 random crops (50-100% of the area) downscaled to a long side of 256, 512, 768 or 1024 px, two
of them re-saved as JPEG 75. The threshold is ``MARGIN`` times the largest clean value; with none of N clean
items at or above it, the false-positive rate is at most 3/N at 95% confidence (the rule of three). Marked
items: the val photos at a long side of 1024 px, marked with a random key and message at the card's strength,
then each attack; recall is the share at or above the threshold. Writes benchmarks/results/presence.json, and
with ``--write-cards`` the ``presence`` field of each checkpoint card (``--cards-only``: from the committed
results, without measuring). A model whose unattacked marked photos do not all reach its threshold gets no
presence test: its card has no ``presence`` and ``mark_present`` is null.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import attacks
import wmark
from wmark import zoo
from wmark.io.image import from_uint8
from wmark.stats import logit_magnitude
from wmark.train.data import image_files
from thresholds import ATTACKS as PILLOW_ATTACKS, ROOT  # noqa: E402  (a sibling script)

RESULTS = Path(__file__).parent / "results"
MARGIN = 1.5
LONG_SIDES = (256, 512, 768, 1024)
ATTACKS = ("identity", "jpeg:quality=50", "resize:scale=0.5", "blur:sigma=1.5")


def pixels(image: Image.Image) -> torch.Tensor:
    return from_uint8(np.asarray(image.convert("RGB")))[None]


def downscaled(image: Image.Image, long_side: int) -> Image.Image:
    scale = min(1.0, long_side / max(image.size))
    return image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.LANCZOS)


def clean_items(photos: list[Path], seed: int = 0):
    """(label, pixels) for 4 random crops of each photo at the LONG_SIDES, half of them JPEG 75 re-saves."""
    rng = random.Random(seed)
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        for index, long_side in enumerate(LONG_SIDES):
            area = rng.uniform(0.5, 1.0)
            w, h = round(image.width * area ** 0.5), round(image.height * area ** 0.5)
            left, top = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
            item = downscaled(image.crop((left, top, left + w, top + h)), long_side)
            if index % 2:
                item = PILLOW_ATTACKS["jpeg75"](item)
            yield f"{photo.name}@{long_side}", pixels(item)


def marked_values(marker: wmark.Watermarker, photos: list[Path], seed: int = 0) -> dict[str, list[float]]:
    """Per attack, the statistic of each val photo marked with a random key and message."""
    generator = torch.Generator().manual_seed(seed)
    values: dict[str, list[float]] = {spec: [] for spec in ATTACKS}
    for index, photo in enumerate(photos):
        x = pixels(downscaled(Image.open(photo), 1024))
        codeword = marker.codeword(hex="ab", key=f"key-{index}")
        y = (marker.embed_tensor(x, codeword) * 255).round() / 255
        for spec in ATTACKS:
            attack = attacks.create(spec)
            attacked = attack(y, attack.sample(y.shape, generator))
            values[spec].append(logit_magnitude(marker.frame_logits(attacked)[0]))
    return values


def calibrate(name: str, train: list[Path], val: list[Path]) -> dict:
    marker = wmark.load(name, "cpu")
    clean = [logit_magnitude(marker.frame_logits(x)[0]) for _, x in clean_items(train + val)]
    threshold = MARGIN * max(clean)
    marked = marked_values(marker, val)
    return {
        "statistic": "median |logit| (wmark.stats.logit_magnitude)",
        "threshold": round(threshold, 4),
        "clean_items": len(clean),
        "clean_max": round(max(clean), 4),
        "clean_median": round(sorted(clean)[len(clean) // 2], 4),
        "fpr_95": round(3 / len(clean), 5),
        "marked_min": {spec: round(min(v), 4) for spec, v in marked.items()},
        "recall": {spec: round(sum(s >= threshold for s in v) / len(v), 4) for spec, v in marked.items()},
    }


def write_card(name: str, found: dict) -> None:
    card = zoo.find_card(name)
    data = {k: v for k, v in card.data.items() if k != "presence"}
    if found["recall"]["identity"] == 1.0:
        data["presence"] = {k: found[k] for k in ("statistic", "threshold", "clean_items", "clean_max", "fpr_95")}
    (card.path / zoo.CARD).write_text(json.dumps(data, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("-m", "--model", action="append", help="checkpoint (repeatable; default: all)")
    parser.add_argument("--write-cards", action="store_true", help="store each threshold in its card")
    parser.add_argument("--cards-only", action="store_true", help="write the cards from results/presence.json")
    args = parser.parse_args()
    if args.cards_only:
        for name, found in json.loads((RESULTS / "presence.json").read_text())["models"].items():
            write_card(name, found)
        return
    train, val = image_files(args.data / "train"), image_files(args.data / "val")
    names = args.model or [card.name for card in zoo.list_cards()]
    committed = RESULTS / "presence.json"
    results = json.loads(committed.read_text())["models"] if args.model and committed.exists() else {}
    for name in names:  # with -m, the other checkpoints' committed entries are kept
        results[name] = calibrate(name, train, val)
        print(name, json.dumps(results[name]), flush=True)
        if args.write_cards:
            write_card(name, results[name])
    RESULTS.mkdir(exist_ok=True)
    committed.write_text(json.dumps({"margin": MARGIN, "attacks": ATTACKS, "models": dict(sorted(results.items()))},
                                    indent=2) + "\n")


if __name__ == "__main__":
    main()
