"""Flips and quarter turns: the eight symmetries of the rectangle, which a received image can be undone from exactly."""
from __future__ import annotations

from typing import Callable

import torch


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
