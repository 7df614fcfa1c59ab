"""The strength at which a mark is as visible as asked: the median over photos of its FLIP (Andersson et al., HPG
2020) on the whole picture, 8-bit marked, as a ratio to the FLIP of a JPEG 75 re-save of the same photo. The one
rule the project calibrates by (``wmark train --target-flip``, the visibility and small-photo benchmarks), and the
one its benchmarks report: a centre crop missed the edges and skies of a 3:2 photo, and a checkpoint calibrated on
one measured 0.60x where 0.55x was asked.

A small error's FLIP grows as a power of its amplitude (0.7 for the colour term), so each photo's ratio is fitted
by a power law in the strength through its two measurements nearest the answer, the median of the fits solved by
bisection, and every photo measured again there: each round costs one FLIP per photo and the last answer's median
is measured, not fitted.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import torch

from wmark.errors import WmarkError
from wmark.io.image import from_uint8, to_uint8
from wmark.perception.flip import jpeg_resave
from wmark.perception.flip_torch import mean_flip

STRENGTHS = (1 / 256, 256.0)
"""Range of strengths searched; a target outside it is an error, not its bound."""
START_PSNR = 45.0
"""The first measurement is at the median strength that gives each photo this PSNR, the second at half of it."""


@dataclass(frozen=True)
class FlipCalibration:
    """``strength`` and the median FLIP ratio measured there (``ratio``) over ``photos``."""

    strength: float
    ratio: float
    photos: int


def marked_at(cover: torch.Tensor, residual: torch.Tensor, strength: float) -> torch.Tensor:
    """``cover + strength * residual`` rounded to the 8-bit grid, as a saved file holds it."""
    return ((cover + strength * residual).clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def jpeg_flip(covers: torch.Tensor) -> float:
    """Mean FLIP of JPEG 75 re-saves (Pillow's libjpeg) of ``covers`` (B, 3, H, W) in [0, 1], against them."""
    covers = covers.detach().float().cpu()
    resaved = torch.stack([from_uint8(jpeg_resave(to_uint8(x))) for x in covers])
    return float(mean_flip(covers, resaved).mean())


@torch.no_grad()
def flip_ratio(cover: torch.Tensor, marked: torch.Tensor, reference: float | None = None) -> float:
    """FLIP of ``marked`` against ``cover`` (1, 3, H, W), whole pictures, over ``reference`` (default: the FLIP
    of the cover's JPEG 75 re-save)."""
    reference = jpeg_flip(cover) if reference is None else reference
    flip = float(mean_flip(cover.detach().float().cpu(), marked.detach().float().cpu()))
    return flip / reference if reference > 0 else math.inf


class _Photo:
    """One cover, its residual at strength 1, its JPEG 75 FLIP and the ratios measured so far."""

    def __init__(self, cover: torch.Tensor, residual: torch.Tensor) -> None:
        self.cover, self.residual = cover.float().cpu(), residual.float().cpu()
        self.reference = jpeg_flip(self.cover)
        self.measured: dict[float, float] = {}

    def measure(self, strength: float) -> float:
        if strength not in self.measured:
            marked = marked_at(self.cover, self.residual, strength)
            self.measured[strength] = flip_ratio(self.cover, marked, self.reference)
        return self.measured[strength]

    def fitted(self, near: float):
        """log ratio as a function of log strength, through the two measurements nearest ``near``."""
        (s1, r1), (s2, r2) = sorted(self.measured.items(), key=lambda m: abs(math.log(m[0] / near)))[:2]
        exponent = math.log(max(r2, 1e-9) / max(r1, 1e-9)) / math.log(s2 / s1)
        exponent = max(exponent, 0.1)  # FLIP grows with the strength; a flat pair (both 0) must not stall
        return lambda log_s: math.log(max(r1, 1e-9)) + exponent * (log_s - math.log(s1))


@torch.no_grad()
def median_flip_ratio(covers: Sequence[torch.Tensor], residuals: Sequence[torch.Tensor], strength: float) -> float:
    """Median over photos of the FLIP ratio to a JPEG 75 re-save at ``strength`` (whole pictures, 8-bit)."""
    return statistics.median(_Photo(c, r).measure(strength) for c, r in zip(covers, residuals))


@torch.no_grad()
def strength_for_flip(covers: Sequence[torch.Tensor], residuals: Sequence[torch.Tensor], target: float,
                      rounds: int = 2) -> FlipCalibration:
    """The strength whose median FLIP ratio over ``covers`` (1, 3, H, W each, in [0, 1]) marked with their
    ``residuals`` (same shapes, at strength 1) is ``target``; ``rounds`` of refitting after the first two
    measurements. Raises :class:`WmarkError` when no strength in :data:`STRENGTHS` reaches it."""
    if not covers or len(covers) != len(residuals):
        raise WmarkError("calibrating a FLIP ratio needs covers and their residuals, as many of each")
    photos = [_Photo(c, r) for c, r in zip(covers, residuals)]
    rms = [float(p.residual.square().mean().sqrt()) for p in photos]
    start = statistics.median(10 ** (-START_PSNR / 20) / r for r in rms if r > 0)
    for strength in (start / 2, start):
        for photo in photos:
            photo.measure(strength)
    strength = start
    for _ in range(rounds):
        fits = [photo.fitted(strength) for photo in photos]
        log_median = lambda log_s: statistics.median(fit(log_s) for fit in fits)  # noqa: E731
        low, high = (math.log(s) for s in STRENGTHS)
        goal = math.log(target)
        if not log_median(low) <= goal <= log_median(high):
            raise WmarkError(f"no strength in {STRENGTHS[0]:g}-{STRENGTHS[1]:g} gives a median FLIP ratio of "
                             f"{target:g}: the marks measured {statistics.median(photo.measure(start) for photo in photos):.3g} "
                             f"at strength {start:.3g}")
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if log_median(middle) < goal else (low, middle)
        strength = math.exp((low + high) / 2)
        ratio = statistics.median(photo.measure(strength) for photo in photos)
    return FlipCalibration(strength=strength, ratio=ratio, photos=len(photos))
