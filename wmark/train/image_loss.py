"""Image losses the recipes choose from: what the encoder pays for changing the cover."""
from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

# StegaStamp's L2 weights on the Y, U and V channels (Tancik et al. 2020, the --y_scale/--u_scale/--v_scale
# defaults of their training script): colour changes cost 100 times more than luma changes.
YUV_WEIGHTS = (1.0, 100.0, 100.0)
# Weight of (1 - SSIM) next to the YUV term: about equal shares for a smooth luma residual (measured on a
# training photo: at 39.6 dB the YUV term is 1.1e-4 and 1 - SSIM is 0.033).
SSIM_WEIGHT = 0.004


def mse(marked: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """Mean squared error in RGB (HiDDeN, MBRS and the others)."""
    return F.mse_loss(marked, cover)


def yuv_ssim(marked: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """StegaStamp's image loss without LPIPS, whose weights cannot be fetched offline: the paper's YUV-weighted
    L2 (averaged over the three channels where the paper sums them) plus (1 - SSIM) on luma (11-pixel Gaussian
    window) as the structural, perceptual term."""
    weights = torch.tensor(YUV_WEIGHTS, device=marked.device, dtype=marked.dtype).view(1, 3, 1, 1)
    yuv_marked, yuv_cover = kornia.color.rgb_to_yuv(marked), kornia.color.rgb_to_yuv(cover)
    weighted = ((yuv_marked - yuv_cover) ** 2 * weights).mean()
    structural = 1 - kornia.metrics.ssim(yuv_marked[:, :1], yuv_cover[:, :1], 11).mean()
    return weighted + SSIM_WEIGHT * structural


IMAGE_LOSSES = {"mse": mse, "yuv_ssim": yuv_ssim}
