"""Search levels: which hypotheses about a received image's geometry extraction tries, and how many it counts.

A pose is a flip or quarter turn (:mod:`~wmark.sync.dihedral`, undone exactly) followed by a small rotation
(:mod:`~wmark.sync.rotation`, found by a scan). The p-value of what a search reads is multiplied by the
number of poses its level could have ended on (a Bonferroni bound, counted whether or not the search
stopped early), so a clean image is detected at most ``fpr`` of the time whatever the search tried.
"""
from __future__ import annotations

from dataclasses import dataclass

from wmark.errors import WmarkError
from wmark.sync import dihedral, rotation


@dataclass(frozen=True)
class Pose:
    """How the received image was transformed after marking: ``transform`` (a key of
    :data:`~wmark.sync.dihedral.UNDO`), then turned ``rotation`` degrees anticlockwise."""

    transform: str = "identity"
    rotation: float = 0.0


@dataclass(frozen=True)
class Level:
    transforms: tuple[str, ...]
    rotations: bool = False

    @property
    def hypotheses(self) -> int:
        """The poses a search at this level can end on (the p-value's Bonferroni factor)."""
        return len(self.transforms) * (rotation.ANGLES if self.rotations else 1)


LEVELS = {
    "off": Level(("identity",)),
    "fast": Level(tuple(dihedral.UNDO)),
    "tilt": Level(("identity", "flip-h"), rotations=True),
    "full": Level(tuple(dihedral.UNDO), rotations=True),
}
"""``off``: the image as received; ``fast``: its flips and quarter turns, undone exactly; ``tilt``: the image
and its mirror image, each turned by up to :data:`~wmark.sync.rotation.LIMIT` degrees (a straightened or
reposted photo); ``full``: every flip and quarter turn, each turned so."""


def level(name: str) -> Level:
    """The search level called ``name``; an unknown one is a WmarkError."""
    if name not in LEVELS:
        raise WmarkError(f"unknown search {name!r}; use {', '.join(LEVELS)}")
    return LEVELS[name]
