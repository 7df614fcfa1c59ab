"""Small rotations (a tilted or straightened photo), undone by resampling about the frame's centre.

The decoder reads a tile only when it lies within about a native pixel of where it was marked (measured on
Storm.jpg, 1920x1280, marked by the default: a 4 px shift leaves the fine band 0.76 of its bits, 8 px the
coarse band chance), so a rotation of a degree already hides the mark. The angle is
found by a scan: every :data:`STEP` degrees within :data:`LIMIT`, each angle scored by a cheap alignment
statistic (the coarsest band's confidence, :meth:`wmark.domain.Domain.aligner`), then refined by the halving
steps of :data:`REFINE` around the best; the pose a search picks is then refined by the steps of :data:`FINE`,
scored on a few tiles of the finest band. A search can end on any multiple of the last step within
``LIMIT + sum(REFINE) + sum(FINE)``; :data:`ANGLES` counts them for the p-value's Bonferroni factor.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

LIMIT = 10.0
STEP = 1.0
REFINE = (0.5,)
"""Refinements of the coarse scan, by the coarse score, which tolerates about half a degree."""
FINE = (0.25, 0.125)
"""Refinements below that, by the fine score."""
ANGLES = 2 * round((LIMIT + sum(REFINE) + sum(FINE)) / FINE[-1]) + 1
"""Angles a search can end on: the multiples of ``FINE[-1]`` within ``LIMIT + sum(REFINE) + sum(FINE)`` degrees."""
Scores = Callable[[list[float]], list[float]]
"""Scores of a list of angles, computed together (one batch of decodes)."""


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


def _climb(angle: float, steps: tuple[float, ...], scores: Scores,
           known: dict[float, float] | None = None) -> tuple[float, float]:
    """(angle, score): at each step, the best of the angle and its two neighbours ``step`` away; ``known``: the
    scores already computed."""
    known = known or dict(zip([angle], scores([angle])))
    for step in steps:
        new = [a for a in (angle - step, angle + step) if a not in known]
        known.update(zip(new, scores(new)))
        angle = max((angle - step, angle, angle + step), key=known.__getitem__)
    return angle, known[angle]


def scan(coarse: Scores) -> tuple[float, float]:
    """(angle, its coarse score): the best of the ``STEP`` steps within ``LIMIT``, refined by ``REFINE``."""
    steps = round(LIMIT / STEP)
    angles = [STEP * k for k in range(-steps, steps + 1)]
    known = dict(zip(angles, coarse(angles)))
    return _climb(max(angles, key=known.__getitem__), REFINE, coarse, known)


def refine(angle: float, fine: Scores) -> float:
    """A scanned angle refined by the ``FINE`` steps, by the ``fine`` scores."""
    return _climb(angle, FINE, fine)[0]
