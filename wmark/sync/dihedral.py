"""Flips and quarter turns: the eight symmetries of the rectangle, which a received image can be undone from exactly.

A search level names the hypotheses tried, in order; extraction stops at the first that decodes. The
p-value of what it finds is multiplied by the number of hypotheses of the level (a Bonferroni bound, counted
whether or not the search stopped early), so a clean image is detected at most ``fpr`` of the time.
"""
from __future__ import annotations

from typing import Callable

import torch

from wmark.errors import WmarkError

DO: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda x: x,
    "flip-h": lambda x: x.flip(-1),
    "flip-v": lambda x: x.flip(-2),
    "rot180": lambda x: x.rot90(2, (-2, -1)),
    "rot90": lambda x: x.rot90(1, (-2, -1)),  # turned 90 degrees anticlockwise
    "rot270": lambda x: x.rot90(-1, (-2, -1)),
    "transpose": lambda x: x.transpose(-2, -1),
    "anti-transpose": lambda x: x.transpose(-2, -1).rot90(2, (-2, -1)),
}
"""The transforms a received (..., H, W) image may have undergone."""

_INVERSE = {"rot90": "rot270", "rot270": "rot90"}  # every other one is its own inverse
UNDO: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {name: DO[_INVERSE.get(name, name)] for name in DO}
"""For each transform, the function that undoes it: ``UNDO[name](DO[name](x))`` is ``x``."""

SEARCHES = {"off": ("identity",), "fast": tuple(UNDO)}
"""Search levels: the hypotheses each tries, in order."""


def hypotheses(search: str) -> tuple[str, ...]:
    """The transforms a search level tries; an unknown level is a WmarkError."""
    if search not in SEARCHES:
        raise WmarkError(f"unknown search {search!r}; use {' or '.join(SEARCHES)}")
    return SEARCHES[search]
