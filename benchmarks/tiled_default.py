"""Derive the tiled, eye-shaped checkpoint from a committed model's weights.

    python benchmarks/tiled_default.py [--base mbrs-64] [--name mbrs-64-tiled] [--flip 0.52]
                                       [--val ../shared/data/val] [--train ../shared/data/train]
                                       [--tune-frames 800] [--tune-steps 1500] [--threads 1]

The encoder is the base checkpoint's, unchanged; what is new is the embedding domain the card
records (:class:`wmark.domain.Domain`): a fine band of 16 tiles of 64 px along the long side at
weight 0.6 (about 2 image pixels per residual pixel on a 2 MP photo: JPEG 50, blur and a 0.5x
resize keep it, the eye hardly sees it), a coarse band of 3 tiles at weight 1 (survives thumbnails of
320 px), 3 codeword classes (192 raw bits, 13 bytes of text after Reed-Solomon and CRC), the model's
patterns made once per part on a grey tile and placed in 16 variants (fast: 6 model calls a frame),
the residual projected on luma and attenuated by the JND map. `benchmarks/domain_levers.py` measured
these choices.
The default strength is set for a median FLIP of ``--flip`` times a JPEG 75 re-save's on the
validation photos (:func:`wmark.perception.calibrate.strength_for_flip`), not for a PSNR. Then the decoder alone is trained
on tiles cut from training photos marked at that strength and attacked (:mod:`wmark.train.tiles`);
the encoder, so the mark and its visibility, stays the base's. Writes checkpoints/NAME.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import size_bands  # a sibling script
from visibility import ROOT
from wmark import Watermarker, pipeline, zoo
from wmark.io.image import from_uint8, list_images
from wmark.perception.calibrate import strength_for_flip
from wmark.train.tiles import TileTuning, tile_set, tune_decoder
from wmark.watermarker.embedder import message

DOMAIN = {"bands": size_bands.bands(size_bands.CHOSEN), "classes": 3, "luma": True, "jnd": True, "patterns": True,
          "template": 0.35}
"""The card's domain: the fine and coarse bands, the middle band of small photos (:mod:`size_bands`), 3 codeword
parts, and the sync template at 0.35 of an 8-bit level (:mod:`wmark.domain.template`)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="mbrs-64")
    parser.add_argument("--name", default="mbrs-64-tiled")
    parser.add_argument("--flip", type=float, default=0.52, help="median FLIP ratio to a JPEG 75 re-save")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "data" / "train")
    parser.add_argument("--tune-frames", type=int, default=TileTuning.frames)
    parser.add_argument("--tune-steps", type=int, default=TileTuning.steps)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the decoder's training")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = zoo.find_card(args.base)
    derived = zoo.Card(args.name, base.path, base.with_domain(DOMAIN).data)
    marker = Watermarker(derived, device="cpu")
    photos = sorted(args.val.glob("*.jpg"))
    images = [from_uint8(np.asarray(Image.open(p).convert("RGB")))[None] for p in photos]
    generator = torch.Generator().manual_seed(0)
    residuals = [pipeline.residual(marker.model, x, message(torch.randint(0, 2, (marker.bits,),
                 generator=generator), 1, marker.device), marker.domain) for x in images]
    strength = strength_for_flip(images, residuals, args.flip).strength
    torch.set_num_threads(args.threads)
    tuning = TileTuning(frames=args.tune_frames, steps=args.tune_steps)
    model = zoo.load_model(derived)  # the Watermarker's model has its batch norms folded: train and save the plain one
    tiles, targets = tile_set(model, marker.domain, strength, list_images(args.train), tuning)
    tuned = tune_decoder(model, tiles, targets, tuning)
    code = marker.code()
    card = {
        "name": args.name, "family": base.family, "kwargs": base.kwargs, "bits": marker.bits,
        "data_bits": code.data_bits, "capacity_bytes": code.capacity_bytes, "payload": code.describe(),
        "size": base.data["size"], "strength": round(strength, 4),
        "strength_rule": f"median FLIP {args.flip} x a JPEG 75 re-save's on the validation images",
        "domain": marker.domain.to_dict(),
        "training": {**base.data["training"], "weights_from": args.base,
                     "tile_tuning": {"data": os.path.relpath(args.train, ROOT), "device": "cpu", "threads": args.threads, **tuned}},
        "metrics": {},
        "notes": (f"{base.data['family'].upper()} weights of {args.base}, the encoder unchanged, run in a tiled domain shaped for "
                  "the eye (benchmarks/tiled_default.py): a fine band of 16 tiles along the long side at weight 0.6 "
                  "and a coarse band of 3 tiles, each tile carrying one of 3 parts of a 192-bit codeword as the "
                  "model's pattern for that part (made on a grey tile) in one of 16 variants (sign, rotation, "
                  "mirroring), the residual projected on luma and scaled by a JND map. The decoder undoes each "
                  "tile's variant and averages the tiles' logits per part, weighted by their JND, then the bands "
                  "by gain over variance. The decoder alone was then trained on tiles cut from marked, attacked "
                  "training photos (wmark.train.tiles). Measured in benchmarks/results/domain_levers.json, "
                  "visibility.json and invisible_default.json."),
    }
    zoo.save_checkpoint(ROOT / "checkpoints" / args.name, model, card)
    print(json.dumps({k: card[k] for k in ("name", "bits", "capacity_bytes", "strength", "strength_rule")}))


if __name__ == "__main__":
    main()
