"""The matched filter that ranks a crop's placements (wmark.sync.matched)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import wmark
from wmark.domain.domain import NEUTRAL
from wmark.domain.grid import transform
from wmark.perception.jnd import luma
from wmark.sync import matched


@pytest.fixture(scope="module")
def marker():
    return wmark.load("mbrs-64-tiled", device="cpu")


def _bits_read(marker, image: Image.Image, codeword: torch.Tensor) -> float:
    """Share of the codeword's bits the matched filter reads from ``image``'s tiles, their logits descrambled and
    averaged per codeword part over every band, as the decoder's are."""
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255
    model, domain = marker.model, marker.domain
    parts = (codeword.float() * 2 - 1).view(domain.classes, -1)
    total = torch.zeros_like(parts)
    for grid, tiles, signs in domain.tiles(x, model.size, model.message_bits):
        logits = matched.logits(model, tiles) * signs[0]
        logits = logits / logits.pow(2).mean().sqrt()
        classes = grid.tile_classes()
        for part in range(domain.classes):
            total[part] += logits[classes == part].sum(0)
    return float((total.sign() == parts).float().mean())


def test_the_defaults_pattern_is_nearly_linear_in_its_message(marker):
    model = marker.model
    messages = torch.randint(0, 2, (48, model.message_bits), generator=torch.Generator().manual_seed(7)).float() * 2 - 1
    grey = torch.full((1, 3, model.size, model.size), NEUTRAL)
    with torch.no_grad():
        patterns = luma(model.residuals_on(grey, messages)).flatten(1)
    images = matched.bit_images(model)
    bias = patterns.mean(0) - messages.mean(0) @ images  # the fit's bias, up to the held-out messages' mean
    residual = patterns - messages @ images - bias
    explained = 1 - float(residual.pow(2).sum() / (patterns - patterns.mean(0)).pow(2).sum())
    assert explained > 0.97  # 0.98


def test_the_matched_filter_reads_a_marked_photo_and_not_an_unmarked_one(marker, photo):
    picture = Image.open(photo).convert("RGB").resize((768, 432), Image.BICUBIC)
    codeword = torch.randint(0, 2, (marker.bits,), generator=torch.Generator().manual_seed(3))
    marked = marker.embed(picture, codeword="".join(map(str, codeword.tolist())))
    assert _bits_read(marker, marked, codeword) > 0.95
    assert _bits_read(marker, picture, codeword) < 0.7


def test_turning_the_bit_images_reads_a_cell_as_turning_the_cell_does(marker):
    tiles = torch.rand(5, 3, marker.model.size, marker.model.size, generator=torch.Generator().manual_seed(2))
    turned = matched.turned_logits(marker.model, tiles)
    for d in range(8):
        expected = matched.logits(marker.model, transform(tiles, torch.full((5,), d), inverse=True))
        assert torch.allclose(turned[d], expected, atol=1e-5 * float(expected.abs().max()))
