"""Regenerate the expected values of every committed checkpoint on the fixture photo.

    python tests/expected/regenerate.py

Run it after training or replacing a checkpoint, and commit the JSON files it writes.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

import wmark
from wmark import pipeline, zoo
from wmark.io.image import read_image
from wmark.stats import psnr

HERE = Path(__file__).parent
PHOTO = HERE.parent / "fixtures" / "photo.jpg"


def expected_for(name: str) -> dict:
    marker = wmark.load(name, device="cpu")
    generator = torch.Generator().manual_seed(1234)
    codeword = torch.randint(0, 2, (marker.bits,), generator=generator).to(torch.uint8)
    x = read_image(PHOTO).rgb
    marked = pipeline.quantize(marker.embed_tensor(x, codeword))
    decoded = (marker.logits(marked) > 0).to(torch.uint8)
    return {
        "photo": PHOTO.name,
        "codeword": "".join(map(str, codeword.tolist())),
        "decoded": "".join(map(str, decoded.tolist())),
        "bit_accuracy": float((decoded == codeword).float().mean()),
        "psnr": round(float(psnr(marked, x)), 3),
    }


def main() -> None:
    for card in zoo.list_cards():
        (HERE / f"{card.name}.json").write_text(json.dumps(expected_for(card.name), indent=2) + "\n")
        print(f"wrote {card.name}.json")


if __name__ == "__main__":
    main()
