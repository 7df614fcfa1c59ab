"""Just-noticeable difference (JND) map of an image, for attenuating a watermark where it would show.

Luminance adaptation after Chou & Li (1995): the threshold is highest in dark areas and grows again
towards white. Contrast masking after Wu et al. (2017, "Enhanced just noticeable difference model
with visual regularity consideration"): texture and edges hide change, a saturating function of the
Sobel gradient magnitude. The two combine with the overlap term of Yang et al. (2005), as in
VideoSeal's attenuation. Thresholds are in 8-bit levels of luma.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)
_BACKGROUND = torch.tensor([[1, 1, 1, 1, 1],
                            [1, 2, 2, 2, 1],
                            [1, 2, 0, 2, 1],
                            [1, 2, 2, 2, 1],
                            [1, 1, 1, 1, 1]], dtype=torch.float32) / 32
_SOBEL = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float32)
_OVERLAP = 0.3


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (B, 1, H, W) of RGB images (B, 3, H, W)."""
    weights = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _filter(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    kernel = kernel.to(y)
    pad = kernel.shape[-1] // 2
    return F.conv2d(F.pad(y, (pad,) * 4, mode="replicate"), kernel[None, None])


def luminance_threshold(y255: torch.Tensor) -> torch.Tensor:
    """Chou & Li's visibility threshold for the background luminance around each pixel (0-255 luma)."""
    background = _filter(y255, _BACKGROUND)
    dark = 17 * (1 - torch.sqrt(background.clamp(min=0) / 127)) + 3
    bright = 3 / 128 * (background - 127) + 3
    return torch.where(background <= 127, dark, bright)


def contrast_threshold(y255: torch.Tensor) -> torch.Tensor:
    """Wu et al.'s contrast masking: 0.115 * 16 * G^2.4 / (G^2 + 26^2) for Sobel gradient magnitude G."""
    gradient = torch.sqrt(_filter(y255, _SOBEL) ** 2 + _filter(y255, _SOBEL.T) ** 2)
    return 0.115 * 16 * gradient**2.4 / (gradient**2 + 26**2)


def jnd_map(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel JND (B, 1, H, W) of RGB images in [0, 1], in 8-bit luma levels (3 on flat mid-grey)."""
    y255 = luma(x) * 255
    lum, con = luminance_threshold(y255), contrast_threshold(y255)
    return lum + con - _OVERLAP * torch.minimum(lum, con)
