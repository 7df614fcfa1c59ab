"""Differentiable stand-ins for JPEG, and MBRS's mix of real and simulated JPEG.

All work on 8x8 block DCTs of full-range YCbCr (ITU-T T.81 / JFIF), padding the
image by edge replication to whole blocks and cropping back.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from .base import Attack, Identity, PerSample, param, register
from .codecs import Jpeg
from .compose import OneOf

_RGB_TO_YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_YCC_TO_RGB = torch.linalg.inv(_RGB_TO_YCC)
_LEVEL = torch.tensor([128.0, 0.0, 0.0]).view(3, 1, 1)  # JPEG level shift, 255 scale


def _dct_matrix() -> torch.Tensor:
    """Orthonormal 8-point DCT-II matrix D, so coefficients = D @ block @ D.T."""
    k = torch.arange(8, dtype=torch.float64).view(8, 1)
    n = torch.arange(8, dtype=torch.float64).view(1, 8)
    d = torch.cos(math.pi * (2 * n + 1) * k / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.float()


_DCT = _dct_matrix()

# ITU-T T.81 Annex K example tables.
_Q_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=torch.float32)
_Q_CHROMA = torch.full((8, 8), 99.0)
_Q_CHROMA[:4, :4] = torch.tensor([
    [17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99],
], dtype=torch.float32)


def rgb_to_ycc(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> level-shifted YCbCr on the 0-255 scale (zero-centred)."""
    m = _RGB_TO_YCC.to(x)
    return torch.einsum("ij,njhw->nihw", m, x * 255) - _LEVEL.to(x)


def ycc_to_rgb(y: torch.Tensor) -> torch.Tensor:
    m = _YCC_TO_RGB.to(y)
    return torch.einsum("ij,njhw->nihw", m, y + _LEVEL.to(y)) / 255


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")


def block_dct(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 8h, 8w) -> (N, C, h, w, 8, 8) DCT coefficients."""
    n, c, hh, ww = x.shape
    blocks = x.reshape(n, c, hh // 8, 8, ww // 8, 8).transpose(3, 4)
    d = _DCT.to(x)
    return d @ blocks @ d.T


def block_idct(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of `block_dct`."""
    n, c, h, w = coeffs.shape[:4]
    d = _DCT.to(coeffs)
    blocks = d.T @ coeffs @ d
    return blocks.transpose(3, 4).reshape(n, c, h * 8, w * 8)


def _through_dct(x: torch.Tensor, edit) -> torch.Tensor:
    """RGB -> YCbCr -> block DCT -> edit(coeffs) -> inverse, cropped and clamped."""
    h, w = x.shape[-2:]
    coeffs = block_dct(rgb_to_ycc(pad_to(x, 8)))
    out = ycc_to_rgb(block_idct(edit(coeffs)))
    return out[..., :h, :w].clamp(0, 1)


def _frequency() -> torch.Tensor:
    """(8, 8) grid of u + v, the zig-zag diagonal index of each coefficient."""
    i = torch.arange(8)
    return (i.view(8, 1) + i.view(1, 8)).float()


@register("jpeg_mask")
class JpegMask(Attack):
    """HiDDeN's JPEG-Mask (Zhu et al., ECCV 2018): keep only the low-frequency 5x5
    DCT coefficients of Y and 3x3 of Cb/Cr in each 8x8 block, zero the rest.
    """

    grad = "approx"

    def transform(self, x, params, cover):
        i = torch.arange(8, device=x.device)
        low = torch.maximum(i.view(8, 1), i.view(1, 8))
        keep = torch.stack([low < 5, low < 3, low < 3]).to(x.dtype)  # (3, 8, 8)
        return _through_dct(x, lambda c: c * keep.view(1, 3, 1, 1, 8, 8))


@register("jpeg_drop")
class JpegDrop(Attack):
    """HiDDeN's JPEG-Drop (Zhu et al., ECCV 2018): drop DCT coefficients at random,
    more often the higher their frequency.

    The paper gives no numbers; here a coefficient at (u, v) of Y is zeroed with
    probability (u + v) / 14, and of Cb/Cr with min(1, 2 (u + v) / 14). The DC term
    is always kept. The keep mask is drawn per frame in `sample`.
    """

    grad = "approx"

    def draw(self, shape, generator):
        h, w = (-(-s // 8) for s in shape[-2:])
        freq = _frequency().to(generator.device) / 14
        p_drop = torch.stack([freq, (2 * freq).clamp(max=1), (2 * freq).clamp(max=1)])
        u = torch.rand(*shape[:-3], 3, h, w, 8, 8, generator=generator, device=generator.device)
        keep = u >= p_drop.view(3, 1, 1, 8, 8)
        return {"keep": keep.transpose(-3, -2).reshape(*shape[:-2], h * 8, w * 8)}

    def transform(self, x, params, cover):
        keep = params["keep"].to(device=x.device, dtype=x.dtype)
        n, c, hh, ww = keep.shape
        keep = keep.reshape(n, c, hh // 8, 8, ww // 8, 8).transpose(3, 4)
        return _through_dct(x, lambda coeffs: coeffs * keep)


def quant_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG quality scaling of the Annex K tables: (N,) quality -> two (N, 8, 8) tables."""
    q = quality.float().clamp(1, 100).view(-1, 1, 1)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)

    def scaled(table):
        return ((table.to(q.device) * scale + 50) / 100).floor().clamp(1, 255)

    return scaled(_Q_LUMA), scaled(_Q_CHROMA)


def cubic_round(z: torch.Tensor) -> torch.Tensor:
    """round(z) + (z - round(z))**3: rounding with a usable gradient (Shin & Song 2017)."""
    r = torch.round(z)
    return r + (z - r) ** 3


def _quantize(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Block-DCT `plane` (N, C, 8h, 8w), quantize with cubic rounding, invert."""
    t = table.to(plane).view(-1, 1, 1, 1, 8, 8)
    return block_idct(cubic_round(block_dct(plane) / t) * t)


@register("jpeg_cubic")
class JpegCubic(PerSample):
    """StegaStamp's JPEG (Tancik et al., CVPR 2020): 4:2:0 chroma, 8x8 DCT, IJG
    quantization tables at `quality`, with rounding replaced by the cubic
    approximation round(x) + (x - round(x))^3 (Shin & Song 2017).
    """

    key = "quality"
    grad = "approx"
    params_doc = {
        "quality": param(50.0, "JPEG quality 0-100 (0 acts as 1); lo-hi draws per sample", lo=0, hi=100),
    }

    def transform(self, x, params, cover):
        h, w = x.shape[-2:]
        ycc = rgb_to_ycc(pad_to(x, 16))
        t_luma, t_chroma = quant_tables(params["quality"].to(x.device))
        y = _quantize(ycc[:, :1], t_luma)
        chroma = _quantize(F.avg_pool2d(ycc[:, 1:], 2), t_chroma)
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
        return ycc_to_rgb(torch.cat([y, chroma], 1))[..., :h, :w].clamp(0, 1)


@register("jpeg_diff")
class JpegDiff(PerSample):
    """kornia's differentiable JPEG (Reich et al., WACV 2024), per-sample quality."""

    key = "quality"
    grad = "approx"
    params_doc = {
        "quality": param(50.0, "JPEG quality 0-100 (0 acts as 1); lo-hi draws per sample", lo=0, hi=100),
    }

    def transform(self, x, params, cover):
        quality = params["quality"].to(device=x.device, dtype=x.dtype)
        return kornia.enhance.jpeg_codec_differentiable(x, quality).clamp(0, 1)


_SIMULATORS = {"mask": JpegMask, "cubic": JpegCubic, "diff": JpegDiff}


@register("jpeg_mix")
class JpegMix(OneOf):
    """MBRS (Jia et al., ACM MM 2021): each mini-batch goes through one of real JPEG
    (straight-through), simulated JPEG or identity, picked with equal odds in `sample`.

    `sim` chooses the simulation: HiDDeN's JPEG-Mask (as MBRS), StegaStamp's cubic
    rounding, or kornia's differentiable JPEG; the last two use `quality` too.
    Params: {"index": 0 real / 1 simulated / 2 identity, "params": ...}.
    """

    grad = "ste"
    params_doc = {
        "quality": param(50, "quality of the real (and cubic/diff simulated) JPEG", lo=0, hi=100),
        "sim": param("mask", "simulated JPEG used in the mix", choices=_SIMULATORS),
    }

    def __init__(self, **options):
        o = self.resolve_options(options)
        sim = _SIMULATORS[o["sim"]]
        sim = sim(quality=o["quality"]) if sim.params_doc else sim()
        super().__init__([Jpeg(quality=o["quality"]), sim, Identity()], **options)
