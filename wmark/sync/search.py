"""Search levels: which hypotheses about a received image's geometry extraction tries, and how many it counts.

A pose is a flip or quarter turn (:mod:`~wmark.sync.dihedral`, undone exactly) followed by a small rotation
(:mod:`~wmark.sync.rotation`, found by a scan). A search spends half of its false-positive budget on the image
as received, which it reads first, and half on every other pose its level could have ended on (a Bonferroni
bound, counted whether or not the search stopped early): a clean image is detected at most ``fpr`` of the time
whatever the search tried, and an unedited marked image costs one decode at every level
(:func:`wmark.watermarker.decision.factor`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wmark.errors import WmarkError
from wmark.sync import dihedral, rotation

if TYPE_CHECKING:
    from wmark.sync.reframe import Reframe


@dataclass(frozen=True)
class Pose:
    """How the received image was transformed after marking: ``transform`` (a key of
    :data:`~wmark.sync.dihedral.UNDO`), then turned ``rotation`` degrees anticlockwise; or, with ``reframe``, then
    cropped, rescaled or turned as the template showed (:mod:`wmark.sync.reframe`; ``rotation`` then only reports
    its angle)."""

    transform: str = "identity"
    rotation: float = 0.0
    reframe: Reframe | None = None


@dataclass(frozen=True)
class Level:
    transforms: tuple[str, ...]
    rotations: bool = False
    reframes: bool = False

    @property
    def hypotheses(self) -> int:
        """The poses a search at this level can end on (the p-value's Bonferroni factor); with reframes, a bound:
        an image's search counts the placements it will score for the template it found
        (:func:`wmark.watermarker.search.plan`)."""
        count = len(self.transforms) * (rotation.ANGLES if self.rotations else 1)
        if self.reframes:  # torch: imported only when a level needs it
            from wmark.sync.reframe import hypotheses_bound
            from wmark.sync.template import FITS
            count += len(self.transforms) * (FITS + hypotheses_bound())  # each fit turned in place, or placed
        return count


LEVELS = {
    "off": Level(("identity",)),
    "fast": Level(tuple(dihedral.UNDO)),
    "tilt": Level(("identity", "flip-h"), rotations=True),
    "full": Level(tuple(dihedral.UNDO), rotations=True),
    "sync": Level(("identity", "flip-h"), rotations=True, reframes=True),
}
"""``off``: the image as received; ``fast``: its flips and quarter turns, undone exactly; ``tilt``: the image
and its mirror image, each turned by up to :data:`~wmark.sync.rotation.LIMIT` degrees (a straightened or
reposted photo); ``full``: every flip and quarter turn, each turned so; ``sync``: for a model that embeds a
template (:mod:`wmark.sync.template`), the image and its mirror image each cropped, rescaled, squeezed or turned
as the template shows; where no template is found (or the model embeds none), as ``tilt``."""


def level(name: str) -> Level:
    """The search level called ``name``; an unknown one is a WmarkError."""
    if name not in LEVELS:
        raise WmarkError(f"unknown search {name!r}; use {', '.join(LEVELS)}")
    return LEVELS[name]
