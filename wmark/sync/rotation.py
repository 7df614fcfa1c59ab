"""Small rotations (a tilted or straightened photo), undone by resampling about the frame's centre.

The decoder reads a tile only when it lies within about a native pixel of where it was marked
(benchmarks/results/search.json), so a rotation of a degree or two already hides the mark. The angle is
found by a scan: every :data:`STEP` degrees within :data:`LIMIT`, each angle scored by a cheap alignment
statistic (the coarsest band's confidence, :meth:`wmark.domain.Domain.aligner`), then refined by the
halving steps of :data:`REFINE` around the best, the last two scored on a few tiles
of the finest band. A scan can end on any multiple of the last step within
``LIMIT + sum(REFINE)``; :data:`ANGLES` counts them for the p-value's Bonferroni factor.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

LIMIT = 10.0
STEP = 1.0
REFINE = (0.5, 0.25, 0.125)
FINE_STEPS = 2
"""The last refinements, below the coarse score's tolerance (about half a degree), use the fine score."""
ANGLES = 2 * round((LIMIT + sum(REFINE)) / REFINE[-1]) + 1
"""Angles a scan can end on: the multiples of ``REFINE[-1]`` within ``LIMIT + sum(REFINE)`` degrees."""


def undo(x: torch.Tensor, degrees: float, height: int, width: int) -> torch.Tensor:
    """``x`` (B, C, h, w), a ``height x width`` frame or a resize of it, turned back by ``degrees`` (the frame was
    turned ``degrees`` anticlockwise about its centre, as Pillow's ``rotate`` does); what the turn brought in
    from outside the frame is black."""
    if not degrees:
        return x
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    # Output pixel p (from the centre, y down) samples the received frame at the turned position; in
    # normalised coordinates the frame's aspect scales the off-diagonal terms.
    affine = torch.tensor([[cos, sin * height / width, 0.0], [-sin * width / height, cos, 0.0]],
                          dtype=x.dtype, device=x.device).expand(len(x), 2, 3)
    grid = F.affine_grid(affine, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def scan(coarse: Callable[[float], float], fine: Callable[[float], float] | None = None) -> tuple[float, float]:
    """(angle, its score): the best of the ``STEP`` steps within ``LIMIT`` and of the first ``REFINE`` step
    around it by the ``coarse`` score, refined by the last :data:`FINE_STEPS` steps by the ``fine`` score (the
    coarse one when None)."""
    scores: dict[tuple[bool, float], float] = {}

    def scored(angle: float, precise: bool) -> float:
        if (precise, angle) not in scores:
            scores[precise, angle] = (fine if precise and fine else coarse)(angle)
        return scores[precise, angle]

    steps = round(LIMIT / STEP)
    best = max((STEP * k for k in range(-steps, steps + 1)), key=lambda angle: scored(angle, False))
    for i, step in enumerate(REFINE):
        precise = i >= len(REFINE) - FINE_STEPS
        best = max((best - step, best, best + step), key=lambda angle: scored(angle, precise))
    return best, scored(best, True)
