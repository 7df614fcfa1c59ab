"""The visibility a training step pays for and steers by: FLIP (:mod:`wmark.perception.flip_torch`) against the
cover, and how far its ratio to a JPEG 75 re-save's FLIP of the same covers
(:func:`wmark.perception.calibrate.jpeg_flip`) is from a target."""
from __future__ import annotations

import math

import torch

from wmark.perception.flip_torch import mean_flip

FLIP_DB = 20 / 0.7
"""dB of PSNR per decade of FLIP ratio: a small colour error's FLIP grows as its amplitude to the power q_c = 0.7
(Andersson et al. 2020), so steering a FLIP ratio by this many dB per decade moves the dual ascent's weight as
fast as a PSNR error of the same amplitude would."""


def flip_loss(marked: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """Mean FLIP of the marked images against their covers (differentiable)."""
    return mean_flip(cover, marked).mean()


def flip_error_db(flip: float, reference: float, target: float) -> float:
    """How far a FLIP ratio ``flip / reference`` is above ``target``, in PSNR-like dB (:data:`FLIP_DB`)."""
    return FLIP_DB * math.log10(max(flip, 1e-9) / max(reference, 1e-9) / target)
