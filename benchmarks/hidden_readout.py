"""Why HiDDeN learns slowly: its global-pooling readout, not the training loop (issue 40).

    python benchmarks/hidden_readout.py [--data ../shared/data/train] [--steps 1000] [--bits 32 8]
        [--out benchmarks/results/hidden_readout.json]

Trains, through the project's own loop (:class:`wmark.train.loop.Trainer`) with identity noise and the
curriculum held in its message stage (the residual free to grow), two pairs at 32 px on training photos:

- ``paper``: HiDDeN as Zhu et al. (ECCV 2018) build it: the message replicated over the image and concatenated,
  and a decoder that ends in a convolution to L channels, global average pooling and a linear layer;
- ``position-readout``: the same encoder and decoder convolutions, read by a linear layer over every position
  (flatten) instead of the global average.

A wiring fault in the loop (message not reaching the residual, a loss or target mix-up, the wrong image decoded)
would hold both at chance. If the second learns and the first does not, the loop works and HiDDeN's
translation-invariant readout is what learns slowly: a bit can then only be carried by image-wide texture
statistics, which the cover's own texture varies as much as the mark does. Writes ``--out``: per variant and bit
count, a training batch's bit accuracy every 100 steps (16 x L bits), and the wall time.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from wmark import zoo
from wmark.models.hidden import HiDDeN
from wmark.train import recipes
from wmark.train.loop import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "hidden_readout.json"
SIZE = 32
MODEL = {"channels": 32, "decoder_downsamples": 1}
"""The committed hidden-32px run's model: 32 channels, one stride-2 decoder block."""


@zoo.register_family("hidden-position-readout")
class PositionReadout(HiDDeN):
    """HiDDeN's encoder and decoder convolutions, read by one linear layer over every position of the last one."""

    family = "hidden-position-readout"

    def __init__(self, message_bits: int, size: int, **kwargs) -> None:
        super().__init__(message_bits, size, **kwargs)
        self.decoder[-1] = nn.Flatten()  # the global average pooling
        positions = (size // 2 ** kwargs.get("decoder_downsamples", 0)) ** 2
        self.decoder_linear = nn.Linear(message_bits * positions, message_bits)


VARIANTS = {"paper": "hidden", "position-readout": "hidden-position-readout"}


def curve(family: str, data: str, bits: int, steps: int, folder: Path) -> dict:
    """Train ``family`` with identity noise for ``steps``; the batch bit accuracy the loop logs every 100 steps."""
    out = folder / f"{family}-{bits}"
    config = TrainConfig(family=family, data=data, out=str(out), steps=steps, batch=16, size=SIZE, bits=bits,
                         attacks=["identity"], log_every=100, model_kwargs=MODEL, seed=0)
    trainer = Trainer(config)
    trainer.begin(*trainer.todo[0])
    started = time.monotonic()
    try:
        for _ in range(steps):
            trainer.step()
    finally:
        trainer.codecs.close()
    with open(out / "log.csv", newline="") as log:
        rows = list(csv.DictReader(log))
    return {"accuracy_every_100_steps": [float(row["bit_acc"]) for row in rows],
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 8])
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    held = dataclasses.replace(recipes.RECIPES["hidden"], warmup_accuracy=1.01)  # never leaves the message stage
    recipes.RECIPES.update({family: held for family in VARIANTS.values()})
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for bits in args.bits:
            for variant, family in VARIANTS.items():
                results[f"{variant}, {bits} bits"] = curve(family, args.data, bits, args.steps, Path(folder))
                print(variant, bits, results[f"{variant}, {bits} bits"], file=sys.stderr, flush=True)
    report = {"settings": {"size": SIZE, "model": MODEL, "batch": 16, "steps": args.steps, "attacks": ["identity"],
                           "curriculum": f"message stage only (image weight {held.warmup_image_fraction:g} of the "
                                         "recipe's)", "data": args.data},
              "results": results}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
