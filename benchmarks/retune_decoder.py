"""Train a tiled checkpoint's decoder again inside its domain, for small and re-compressed photos (issue 39).

    python benchmarks/retune_decoder.py [--model mbrs-64-tiled] [--frames 1600] [--steps 3000]
        [--long-side 512,2048] [--train ../shared/data/train] [--tiles /tmp/tiles.pt] [--threads 2]

The first tuning (``benchmarks/tiled_default.py``) cut its tiles from 1280-2048 px frames marked without the sync
template, and attacked them with JPEG, H.264, blur and thumbnails. A 768x512 photo's fine tiles are 48 px and its
coarse tiles hold the pattern amid a 4x shrunk picture, and WebP, median filters and kept-small resizes were never
seen. Here the decoder alone is trained on from where it stands (:func:`wmark.train.tiles.tune_decoder`) on tiles
cut from training photos at a long side of ``--long-side`` px, marked as the card embeds (its whole domain, template
included, at 0.7-1.1x the card's strength) and attacked by :func:`wmark.train.tiles.attack`. The encoder, and so
the mark and its visibility, the domain and the strength are unchanged.

The card records the run under ``training.tile_retuning``. Its presence threshold was measured on the old decoder's
logits, so it is dropped: measure it again with ``python benchmarks/presence.py -m NAME --write-cards``. With
``--tiles`` the cut tiles are kept in that file and reused by a later run with the same settings.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from visibility import ROOT
from wmark import zoo
from wmark.domain import Domain
from wmark.io.image import list_images
from wmark.train.tiles import TileTuning, tile_set, tune_decoder

CUT = ("frames", "fine_tiles", "long_side", "strength", "seed")
"""The settings that decide which tiles are cut (a cache made with others is cut again)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mbrs-64-tiled")
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "data" / "train")
    parser.add_argument("--frames", type=int, default=1600)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--long-side", default="512,2048", help="lo,hi: the frames' long side in px")
    parser.add_argument("--seed", type=int, default=1, help="of the frames, codewords and attacks")
    parser.add_argument("--tiles", type=Path, default=None, help="cache of the cut tiles (made if missing)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    card = zoo.find_card(args.model)
    model, domain = zoo.load_model(card), Domain.from_dict(card.domain)
    low, high = (int(side) for side in args.long_side.split(","))
    tuning = TileTuning(frames=args.frames, steps=args.steps, long_side=(low, high), seed=args.seed)
    cut = {key: value for key, value in asdict(tuning).items() if key in CUT}
    cached = torch.load(args.tiles) if args.tiles and args.tiles.is_file() else None
    if cached is not None and cached["cut"] == cut:
        tiles, targets = cached["tiles"], cached["targets"]
    else:
        tiles, targets = tile_set(model, domain, card.strength, list_images(args.train), tuning)
        if args.tiles:
            torch.save({"cut": cut, "tiles": tiles, "targets": targets}, args.tiles)
    tuned = tune_decoder(model, tiles, targets, tuning)
    data = {key: value for key, value in card.data.items() if key not in ("sha256", "presence")}
    data["training"] = {**data["training"], "tile_retuning": {
        "data": os.path.relpath(args.train, ROOT), "device": "cpu", "threads": args.threads,
        "attacks": "wmark.train.tiles.attack", **tuned}}
    saved = zoo.save_checkpoint(card.path, model, data)
    print(json.dumps({"checkpoint": str(saved.path), "tiles": len(tiles),
                      "final_tile_bit_accuracy": tuned["final_tile_bit_accuracy"]}))


if __name__ == "__main__":
    main()
