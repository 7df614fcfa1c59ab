"""Any-resolution embedding and extraction.

The model runs at its native size whatever the input. In the classic pipeline the image is resized
down, the model predicts a residual there, the residual is resized up to the full image and added
at strength ``s``; extraction resizes down the same way. A :class:`~wmark.domain.Domain` generalises
this to grids of native-size tiles and to residuals shaped for the eye; the default domain is the
classic pipeline.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wmark.domain import Domain
from wmark.errors import WmarkError
from wmark.models.base import WatermarkModel

MIN_SIDE = 64
WHOLE_FRAME = Domain()


def check_size(x: torch.Tensor) -> None:
    """Refuse images smaller than :data:`MIN_SIDE` on either side."""
    height, width = x.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise WmarkError(f"image is {width}x{height}; wmark needs at least {MIN_SIDE} px on each side")


def to_native(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (B, 3, H, W) to the model's square native size, anti-aliased."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def from_native(residual: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a native-size residual up (or down) to (height, width); anti-aliased only when shrinking."""
    if residual.shape[-2:] == (height, width):
        return residual
    shrink = height < residual.shape[-2] or width < residual.shape[-1]
    return F.interpolate(residual, size=(height, width), mode="bilinear", antialias=shrink, align_corners=False)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid (what a saved file holds), clamped to [0, 1]."""
    return (x.clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def residual(model: WatermarkModel, x: torch.Tensor, message: torch.Tensor,
             domain: Domain = WHOLE_FRAME) -> torch.Tensor:
    """The full-resolution residual for images ``x`` (B, 3, H, W) and ±1 ``message``, at strength 1."""
    check_size(x)
    return domain.residual(model, x, message)


@torch.no_grad()
def embed(model: WatermarkModel, x: torch.Tensor, message: torch.Tensor, strength: float,
          domain: Domain = WHOLE_FRAME) -> torch.Tensor:
    """Mark full-resolution images ``x`` (B, 3, H, W) with ±1 ``message``; clamped, not rounded."""
    return (x + strength * residual(model, x, message, domain)).clamp(0, 1)


@torch.no_grad()
def decode(model: WatermarkModel, x: torch.Tensor, domain: Domain = WHOLE_FRAME, turned: float = 0.0,
           coverage: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (B, L) read from full-resolution images, turned back by ``turned`` degrees first; with ``coverage``,
    from the tiles it covers (see :meth:`wmark.domain.Domain.decode`)."""
    check_size(x)
    return domain.decode(model, x, turned, coverage)
