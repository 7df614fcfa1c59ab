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
# How much more the MSE an image has beyond a PSNR floor costs (RGB MSE units, next to the recipe's loss).
FLOOR_WEIGHT = 10.0


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


def floor_penalty(marked: torch.Tensor, cover: torch.Tensor, floor_db: float) -> torch.Tensor:
    """``FLOOR_WEIGHT`` times each image's MSE beyond that of ``floor_db`` dB, averaged over the batch.

    The dual ascent steers the batch's mean PSNR, which lets some photos sit far below it (stegastamp-100: 26.8 dB
    on FallenLeaf at a 33.3 dB mean); this hinge charges only the images under the floor.
    """
    per_image = (marked - cover).square().flatten(1).mean(1)
    return FLOOR_WEIGHT * (per_image - 10 ** (-floor_db / 10)).clamp_min(0).mean()


IMAGE_LOSSES = {"mse": mse, "yuv_ssim": yuv_ssim}
