"""A matched filter for a model's tile patterns: cheap logits that rank a crop's placements.

A ``patterns`` domain embeds, in each tile, the model's residual on a grey tile for the tile's codeword part
(:meth:`wmark.domain.Domain.planes`). For MBRS the luma of that residual is nearly linear in the message: a bias and
one image per bit, fitted by least squares on 128 random messages, explain 98 % of its variance on others
(mbrs-64-tiled, ``tests/test_matched.py``). A tile then reads as its correlation with each bit's image once the
picture underneath is whitened: each tile's spectrum is divided by its own smoothed magnitude to the power
:data:`WHITENING`, the matched filter for a picture taken as coloured noise (the correlation detector of Cox et al.
1997, with the spectral whitening of symmetric phase-only matched filtering, Kutter 1998). It costs two FFTs and a
matrix product a tile, against a pass of the decoder.

It reads less than the decoder (on the middle band of the 10 validation photos at 768x512: 0.93 of a tile's bits
unedited and 0.69 after JPEG 70, the decoder 0.98 and 0.73), so :func:`wmark.sync.reframe.search` uses it only to
rank a crop's placements and :func:`wmark.sync.reframe.promise` to order the flips; the decoder scores the
best-ranked placements again and reads the ones it picks.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from wmark.domain.domain import NEUTRAL
from wmark.domain.grid import transform
from wmark.perception.jnd import luma

FIT_MESSAGES = 128
"""Random messages the bit images are fitted on: 256 read a noisy held-out pattern no better (0.951 of its bits
against 0.949), and each costs an encoder pass."""
WHITENING = 0.75
"""The power of a tile's smoothed spectral magnitude its spectrum is divided by: 1 whitens fully and lifts the
bins the mark leaves empty; a Laplacian (about 0.5 on a natural picture's 1/f spectrum) read 0.66 of the middle
band's bits after JPEG 70, this 0.69."""


@lru_cache(maxsize=4)
@torch.no_grad()
def bit_images(model) -> torch.Tensor:
    """(bits, size * size): the luma image each bit of ``model``'s message adds to its pattern on a grey tile, fitted
    by least squares with a bias over :data:`FIT_MESSAGES` seeded random messages (±1)."""
    generator = torch.Generator().manual_seed(0)
    messages = torch.randint(0, 2, (FIT_MESSAGES, model.message_bits), generator=generator).float() * 2 - 1
    grey = torch.full((1, 3, model.size, model.size), NEUTRAL, device=next(model.parameters()).device)
    patterns = luma(model.residuals_on(grey, messages.to(grey.device)).float()).flatten(1).cpu()
    design = torch.cat([messages, torch.ones(FIT_MESSAGES, 1)], 1)
    return torch.linalg.lstsq(design, patterns).solution[:-1].contiguous()


@lru_cache(maxsize=4)
def turned_bit_images(model, device: torch.device) -> torch.Tensor:
    """(8 * bits, size * size) on ``device``: :func:`bit_images` under each of the square's 8 rotations and
    mirrorings (:func:`wmark.domain.grid.transform`), the rotation major."""
    images = bit_images(model).view(-1, 1, model.size, model.size)
    turned = [transform(images, torch.full((len(images),), d)) for d in range(8)]
    return torch.cat(turned).flatten(1).contiguous().to(device)


def whitened(tiles: torch.Tensor) -> torch.Tensor:
    """Luma tiles (N, 1, size, size), each spectrum divided by its 3x3-smoothed magnitude to the power
    :data:`WHITENING`."""
    spectrum = torch.fft.fft2(tiles)
    magnitude = F.avg_pool2d(F.pad(spectrum.abs(), (1, 1, 1, 1), mode="circular"), 3, 1)
    return torch.fft.ifft2(spectrum / (magnitude + 1e-6) ** WHITENING).real


def logits(model, tiles: torch.Tensor) -> torch.Tensor:
    """(N, bits) correlations of RGB tiles (N, 3, size, size), whitened, with ``model``'s bit images: a logit's sign
    is the bit's, its scale arbitrary."""
    images = bit_images(model).to(tiles.device)
    return whitened(luma(tiles.float())).flatten(1) @ images.T


def turned_logits(model, tiles: torch.Tensor) -> torch.Tensor:
    """(8, N, bits): :func:`logits` of RGB tiles (N, 3, size, size) each turned back by every rotation ``d``, as
    ``logits(model, transform(tiles, d, inverse=True))`` reads them, from one whitening a tile. Whitening commutes with
    the square's symmetries (they permute a spectrum's bins, and the 3x3 mean is symmetric), and a tile turned back
    correlates with a bit image as the tile does with that image turned, so the bit images are turned instead."""
    images = turned_bit_images(model, tiles.device)
    read = whitened(luma(tiles.float())).flatten(1) @ images.T
    return read.view(len(tiles), 8, -1).transpose(0, 1)
