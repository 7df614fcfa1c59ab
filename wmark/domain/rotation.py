"""A small rotation of a frame undone by resampling about its centre: how the tiles are read under a pose's angle
(:meth:`wmark.domain.grid.TileGrid.cut`). Finding the angle is :mod:`wmark.sync.rotation`'s job."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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
