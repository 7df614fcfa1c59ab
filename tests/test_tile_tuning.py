"""Decoder fine-tuning inside an embedding domain (wmark.train.tiles)."""
from __future__ import annotations

import random

import torch
from PIL import Image

from wmark import zoo
from wmark.domain import Domain
from wmark.train.tiles import TileTuning, attack, decoder_parameters, tile_set, tune_decoder

DOMAIN = Domain.from_dict({"bands": [{"tiles": 4}, {"tiles": 2}], "classes": 2, "luma": True, "jnd": True,
                           "patterns": True})
TINY = TileTuning(frames=3, fine_tiles=4, steps=3, batch=8, long_side=(256, 320))


def _model():
    return zoo.build("mbrs", message_bits=8, size=32, channels=8, plane=8, blocks=1).eval()


def test_tiles_are_cut_as_the_decoder_reads_them_with_their_part_as_target(photo):
    model = _model()
    tiles, targets = tile_set(model, DOMAIN, 0.5, [photo], TINY, log=lambda _: None)
    # per frame: 4 of the fine band's tiles, and every tile of the coarse band (2 x 1 or 1 x 2 on a wide photo)
    assert tiles.shape == (3 * (4 + 2), 3, 32, 32) and targets.shape == (3 * (4 + 2), 8)
    assert set(targets.unique().tolist()) <= {0.0, 1.0}


def test_tuning_changes_the_decoder_and_leaves_the_encoder_and_so_the_mark_alone(photo):
    model = _model()
    tiles, targets = tile_set(model, DOMAIN, 0.5, [photo], TINY, log=lambda _: None)
    decoder = {id(p) for p in decoder_parameters(model)}
    before = {name: p.clone() for name, p in model.named_parameters()}
    report = tune_decoder(model, tiles, targets, TINY, log=lambda _: None)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(id(dict(model.named_parameters())[name]) in decoder for name in changed)
    assert report["tiles"] == len(tiles) and report["steps"] == 3


def test_the_attacks_keep_a_photo_readable_by_pillow(photo):
    image = Image.open(photo).convert("RGB")
    rng = random.Random(0)
    for _ in range(12):
        attacked = attack(image, rng)
        assert attacked.mode == "RGB" and min(attacked.size) >= 1
