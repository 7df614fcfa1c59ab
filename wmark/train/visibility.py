"""The visibility a training step pays for and steers by: FLIP (:mod:`wmark.perception.flip_torch`) against the
cover, and its ratio to a JPEG 75 re-save's FLIP of the same covers, the scale the project reports marks on."""
from __future__ import annotations

import math

import numpy as np
import torch

from wmark.io.image import from_uint8, to_uint8
from wmark.perception.flip import jpeg_resave
from wmark.perception.flip_torch import mean_flip

FLIP_DB = 20 / 0.7
"""dB of PSNR per decade of FLIP ratio: a small colour error's FLIP grows as its amplitude to the power q_c = 0.7
(Andersson et al. 2020), so steering a FLIP ratio by this many dB per decade moves the dual ascent's weight as
fast as a PSNR error of the same amplitude would."""


def flip_loss(marked: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """Mean FLIP of the marked images against their covers (differentiable)."""
    return mean_flip(cover, marked).mean()


@torch.no_grad()
def jpeg_flip(cover: torch.Tensor) -> float:
    """Mean FLIP of JPEG 75 re-saves of the covers (B, 3, H, W) in [0, 1], through Pillow's libjpeg."""
    resaved = torch.stack([from_uint8(jpeg_resave(to_uint8(x))) for x in cover.detach().float().cpu()])
    return float(mean_flip(cover.detach().float().cpu(), resaved).mean())


def flip_error_db(flip: float, reference: float, target: float) -> float:
    """How far a FLIP ratio ``flip / reference`` is above ``target``, in PSNR-like dB (:data:`FLIP_DB`)."""
    return FLIP_DB * math.log10(max(flip, 1e-9) / max(reference, 1e-9) / target)


def centre(x: torch.Tensor, sample: int = 512) -> torch.Tensor:
    """The centre ``sample`` px square of images (..., H, W), as float on the CPU (FLIP's view at 1:1)."""
    height, width = x.shape[-2:]
    top, left = max(0, (height - sample) // 2), max(0, (width - sample) // 2)
    return x[..., top:top + sample, left:left + sample].float().cpu()


@torch.no_grad()
def centre_flip_ratio(original: torch.Tensor, marked: torch.Tensor) -> float:
    """FLIP ratio to JPEG 75 of ``marked`` against ``original`` (1, 3, H, W), on their :func:`centre` crop."""
    reference = jpeg_flip(centre(original))
    return float(mean_flip(centre(original), centre(marked))) / reference if reference > 0 else float(np.nan)
