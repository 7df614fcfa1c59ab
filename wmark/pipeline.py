"""Any-resolution embedding and extraction.

The model runs at its native size whatever the input: the image is resized down, the
model predicts a residual there, the residual is resized up to the full image and added
at strength ``s``. Extraction resizes down the same way. The model's cost is therefore
independent of the resolution; only the two resizes grow with it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wmark.errors import WmarkError
from wmark.models.base import WatermarkModel

MIN_SIDE = 64


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


def native_from_uint8(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> float (B, 3, size, size) in [0, 1], anti-aliased.

    On the CPU the uint8 frames are resized as they are (torch's uint8 channels-last kernel, ~25x
    quicker than converting full frames to float first; the native image is rounded to 8 bits).
    That kernel is CPU-only, so other devices resize floats.
    """
    planes = frames.permute(0, 3, 1, 2)
    check_size(planes)
    if planes.device.type != "cpu":
        planes = planes.float()
    native = F.interpolate(planes, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return native.float().div_(255)


@torch.no_grad()
def frame_residual(model: WatermarkModel, frames: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
    """The full-resolution float residual (B, 3, H, W) for uint8 frames (B, H, W, 3), at strength 1."""
    return from_native(model.residual(native_from_uint8(frames, model.size), message), *frames.shape[1:3])


@torch.no_grad()
def decode_frames(model: WatermarkModel, frames: torch.Tensor) -> torch.Tensor:
    """Logits (B, L) read from uint8 frames (B, H, W, 3)."""
    return model.decode(native_from_uint8(frames, model.size))


def add_to_uint8(frames: torch.Tensor, residual: torch.Tensor, strength: float) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) plus ``strength`` × a float residual (B, 3, H, W), rounded and clamped.

    Equal to ``quantize(frames / 255 + strength * residual)`` without turning the frames into floats:
    the video path's per-frame cost.
    """
    delta = (residual * (255 * strength)).round_().to(torch.int16).permute(0, 2, 3, 1)
    return (frames.to(torch.int16) + delta).clamp_(0, 255).to(torch.uint8)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid (what a saved file holds), clamped to [0, 1]."""
    return (x.clamp(0, 1) * 255).round() / 255


@torch.no_grad()
def residual(model: WatermarkModel, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
    """The full-resolution residual for images ``x`` (B, 3, H, W) and ±1 ``message`` (B, L), at strength 1."""
    check_size(x)
    return from_native(model.residual(to_native(x, model.size), message), *x.shape[-2:])


def embed(model: WatermarkModel, x: torch.Tensor, message: torch.Tensor, strength: float) -> torch.Tensor:
    """Mark full-resolution images ``x`` (B, 3, H, W) with ±1 ``message`` (B, L); clamped, not rounded."""
    return (x + strength * residual(model, x, message)).clamp(0, 1)


@torch.no_grad()
def decode(model: WatermarkModel, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, L) read from full-resolution images."""
    check_size(x)
    return model.decode(to_native(x, model.size))
