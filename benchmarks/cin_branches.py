"""Which decoder branch a CIN checkpoint's noise selector picks, and what each branch reads.

    python benchmarks/cin_branches.py [-m cin-64] [--val ../shared/data/val] [--strength S]

Each validation photo is marked with a random codeword (any-resolution pipeline, the card's strength or S),
saved as 8-bit pixels and attacked with the Pillow/numpy attacks of `thresholds.py`. For each attack:
how many photos the selector sends to the non-invertible branch, the mean bit accuracy of each
branch read on its own, and that of the branch the selector picked (what ``decode`` returns).
Writes benchmarks/results/cin_branches_<model>[_s<S>].json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import wmark
from wmark import pipeline
from wmark.io.image import from_uint8, list_images, read_image, to_uint8

from thresholds import ATTACKS, ROOT

SHOWN = ("none", "jpeg75", "jpeg50", "h264crf28", "resize0.5", "blur1.5", "noise0.02", "brightness1.3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="cin-64")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--strength", type=float, help="instead of the card's (a weaker mark tests the selector)")
    args = parser.parse_args()
    marker = wmark.load(args.model, device="cpu")
    model, generator = marker.model, torch.Generator().manual_seed(0)
    tally = {name: {"robust_picked": 0, "invertible_bit_acc": [], "robust_bit_acc": [], "selected_bit_acc": []}
             for name in SHOWN}
    photos = list_images(args.val)
    for path in photos:
        codeword = torch.randint(0, 2, (marker.bits,), generator=generator).to(torch.uint8)
        marked = pipeline.quantize(marker.embed_tensor(read_image(path).rgb, codeword, args.strength))
        saved = Image.fromarray(to_uint8(marked[0]))
        for name in SHOWN:
            native = pipeline.to_native(from_uint8(np.asarray(ATTACKS[name](saved)))[None], model.size)
            with torch.no_grad():
                entry = tally[name]
                entry["robust_picked"] += int(model.heavy_logit(native).item() > 0)
                for branch, decode in (("invertible", model.decode_invertible), ("robust", model.decode_robust),
                                       ("selected", model.decode)):
                    bits = (decode(native)[0] > 0).to(torch.uint8)
                    entry[f"{branch}_bit_acc"].append(float((bits == codeword).float().mean()))
    means = {name: {"robust_picked": e["robust_picked"],
                    **{f"{branch}_bit_acc": round(float(np.mean(e[f"{branch}_bit_acc"])), 4)
                       for branch in ("invertible", "robust", "selected")}} for name, e in tally.items()}
    report = {"model": args.model, "strength": args.strength or marker.card.strength, "photos": len(photos),
              "attacks": means}
    suffix = f"_s{args.strength:g}" if args.strength else ""
    out = ROOT / "benchmarks" / "results" / f"cin_branches_{args.model}{suffix}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
