"""The synchronisation template a domain adds to the mark: four faint luma gratings locked to the finest tile
grid, which let an extractor find the grid again in a crop, rescale or rotation (a DFT template, Pereira & Pun
2000, "Robust template matching for affine resistant image watermarks"). Finding them in a received image is
:mod:`wmark.sync.template`'s job.

The gratings run along the grid's two diagonals at :data:`HARMONIC` and ``HARMONIC + 1`` cycles per tile.
Diagonals, not the grid's axes: photos and their JPEG blocks put most of their own energy on the axes of the
spectrum. Water ripples on ColdRipple.jpg buried row gratings there (whitened 2.0-2.2 at their bins against 4-5 for
the ripples' pairs on crops), so no crop of it could be placed; along the diagonals its gratings stand at 7-9 with
no other pair above 3.3 (ten val photos, crops of 70 % and 50 % and a 90 % crop resized to 0.75 with JPEG 75).

The gratings are periodic, so a pirate who knows the scheme could estimate and remove them; they only carry
geometry. They add 4 sinusoids of amplitude ``amplitude`` (8-bit levels before the JND shaping) to the residual.
"""
from __future__ import annotations

import math

import torch

HARMONIC = 10
"""Cycles per tile of the lower grating along each diagonal: a period of 4.5 native pixels of a 64 px model across
its stripes (6.4 pixels on a 2 MP photo), coarse enough to live through JPEG 75 after a resize to 0.75, which
quantises diagonal frequencies harder than axial ones: there the weaker diagonal of Aqua, Cascade, Fossa and Storm
stood at whitened 1.6-3.5 with 16 cycles, 2.9-9.3 with 12 and 3.8-9.5 with 10. 12 also put the gratings on the
4th harmonic of grid-l.jpg's own lattice, whose pairs then failed the ratio check."""
PHASES = (0.3, 1.7, 2.9, 4.4)
"""Phases (radians) of the gratings: the falling diagonal (columns plus rows) at HARMONIC and HARMONIC + 1, then
the rising one (columns minus rows) at both."""


def pattern(height: int, width: int, rows: int, cols: int) -> torch.Tensor:
    """The template (1, 1, height, width) of a frame whose finest grid is ``rows x cols`` tiles, peak amplitude
    up to 4; pixel centres sit at grid coordinate (index + 0.5) / pitch, as :class:`wmark.sync.template.Fit`
    reads them."""
    x = (torch.arange(width, dtype=torch.float64) + 0.5) * (cols / width)
    y = (torch.arange(height, dtype=torch.float64) + 0.5) * (rows / height)
    falling, rising = x.view(1, -1) + y.view(-1, 1), x.view(1, -1) - y.view(-1, 1)
    waves = sum(torch.cos(2 * math.pi * k * falling + p) for k, p in zip((HARMONIC, HARMONIC + 1), PHASES[:2]))
    waves = waves + sum(torch.cos(2 * math.pi * k * rising + p) for k, p in zip((HARMONIC, HARMONIC + 1), PHASES[2:]))
    return waves.float().view(1, 1, height, width)
