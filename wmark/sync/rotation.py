"""Small rotations (a tilted or straightened photo): finding the angle; :func:`wmark.domain.rotation.undo` turns
the frame back by it.

The decoder reads a tile only when it lies within about a native pixel of where it was marked (measured on
Storm.jpg, 1920x1280, marked by the default: a 4 px shift leaves the fine band 0.76 of its bits, 8 px the
coarse band chance), so a rotation of a degree already hides the mark. The angle is
found by a scan: every :data:`STEP` degrees within :data:`LIMIT`, each angle scored by a cheap alignment
statistic (the coarsest band's confidence, :meth:`wmark.domain.Domain.aligner`); the pose a search picks is then
refined around its best angle by the steps of :data:`FINE`, scored on a few tiles of the finest band. A search can
end on any multiple of the last step within ``LIMIT + SPAN + FINE[1]``; :data:`ANGLES` counts them for the
p-value's Bonferroni factor.
"""
from __future__ import annotations

from typing import Callable

LIMIT = 10.0
STEP = 1.0
"""The coarse scan's step: the coarse score tolerates about half a degree."""
SPAN, FINE = 0.75, (0.25, 0.125)
"""The fine refinement scores every ``FINE[0]`` within ``SPAN`` of the scanned angle (the coarse score's best may
be half a degree off, where the fine score is noise), then climbs by ``FINE[1]``."""
ANGLES = 2 * round((LIMIT + SPAN + FINE[1]) / FINE[1]) + 1
"""Angles a search can end on: the multiples of ``FINE[1]`` within ``LIMIT + SPAN + FINE[1]`` degrees."""
Scores = Callable[[list[float]], list[float]]
"""Scores of a list of angles, computed together (one batch of decodes)."""


def scan(coarse: Scores) -> tuple[float, float]:
    """(angle, its coarse score): the best of the ``STEP`` steps within ``LIMIT``."""
    steps = round(LIMIT / STEP)
    angles = [STEP * k for k in range(-steps, steps + 1)]
    values = coarse(angles)
    return max(zip(angles, values), key=lambda scored: scored[1])


def refine(angle: float, fine: Scores) -> float:
    """A scanned angle refined by the ``fine`` scores: the best of every ``FINE[0]`` within ``SPAN``, then the
    best of it and its neighbours ``FINE[1]`` away."""
    count = round(SPAN / FINE[0])
    angles = [angle + FINE[0] * k for k in range(-count, count + 1)]
    known = dict(zip(angles, fine(angles)))
    best = max(angles, key=known.__getitem__)
    neighbours = [best - FINE[1], best + FINE[1]]
    known.update(zip(neighbours, fine(neighbours)))
    return max([best, *neighbours], key=known.__getitem__)
