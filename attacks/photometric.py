"""Pixel-value attacks: blur, noise and colour changes (StegaStamp's augmentations,
Tancik et al., CVPR 2020), a multiplicative gain, salt-and-pepper noise, gamma and greyscale. Every option
takes a value or a lo-hi range drawn per sample.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from .base import Attack, PerSample, param, register
from .colour import BT601_LUMA


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) params -> (N, 1, 1, 1) on x's device and dtype."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) Rec. 601 luma."""
    w = torch.tensor(BT601_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per image, edges replicated.

    The kernel has 2 * radius + 1 taps; a sigma near 0 leaves the image unchanged.
    """
    if radius == 0:
        return x
    n, c, h, w = x.shape
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.to(device=x.device, dtype=x.dtype).clamp_min(1e-3).view(-1, 1)
    k = torch.exp(-(t**2) / (2 * s**2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, taps)
    y = F.pad(x, (radius,) * 4, mode="replicate").reshape(1, n * c, h + 2 * radius, w + 2 * radius)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    return y.reshape(n, c, h, w)


@register("blur")
class Blur(PerSample):
    """Gaussian blur (HiDDeN, StegaStamp). The kernel radius is ceil(3 * max sigma)."""

    key = "sigma"
    params_doc = {"sigma": param(1.0, "standard deviation in pixels; lo-hi per sample", lo=0, hi=10)}

    def transform(self, x, params, cover):
        sigma = self.options["sigma"]
        radius = math.ceil(3 * (sigma[1] if isinstance(sigma, tuple) else sigma))
        return gaussian_blur(x, params["sigma"], radius)


@register("noise")
class Noise(Attack):
    """Additive Gaussian noise, clipped to [0, 1]. The noise map is drawn per frame."""

    params_doc = {"std": param(0.05, "noise standard deviation; lo-hi per sample", lo=0, hi=1)}

    def draw(self, shape, generator):
        return {
            "std": self.draw_option("std", shape[0], generator),
            "noise": torch.randn(shape, generator=generator, device=generator.device),
        }

    def transform(self, x, params, cover):
        noise = params["noise"].to(device=x.device, dtype=x.dtype)
        return (x + _per_sample(params["std"], x) * noise).clamp(0, 1)


@register("salt_pepper")
class SaltPepper(Attack):
    """Salt-and-pepper noise: each pixel turns black with probability amount / 2 and
    white with probability amount / 2. One uniform map per frame decides both.
    """

    params_doc = {"amount": param(0.05, "fraction of pixels replaced; lo-hi per sample", lo=0, hi=1)}

    def draw(self, shape, generator):
        u = torch.rand(*shape[:-3], 1, *shape[-2:], generator=generator, device=generator.device)
        return {"amount": self.draw_option("amount", shape[0], generator), "u": u}

    def transform(self, x, params, cover):
        u = params["u"].to(x.device)
        half = params["amount"].to(device=x.device, dtype=u.dtype).view(-1, 1, 1, 1) / 2
        black, white = u < half, (u >= half) & (u < 2 * half)
        return x.masked_fill(black, 0).masked_fill(white, 1)


@register("brightness")
class Brightness(PerSample):
    """Add `delta` to every channel, clipped (StegaStamp's brightness offset)."""

    key = "delta"
    params_doc = {"delta": param(0.2, "value added; lo-hi per sample", lo=-1, hi=1)}

    def transform(self, x, params, cover):
        return (x + _per_sample(params["delta"], x)).clamp(0, 1)


@register("gain")
class Gain(PerSample):
    """Multiply every channel by `factor`, clipped: Pillow's ImageEnhance.Brightness, whose highlights clip
    to white where `brightness` only shifts them."""

    key = "factor"
    params_doc = {"factor": param(1.3, "multiplier (1 = unchanged); lo-hi per sample", lo=0, hi=5)}

    def transform(self, x, params, cover):
        return (x * _per_sample(params["factor"], x)).clamp(0, 1)


@register("contrast")
class Contrast(PerSample):
    """Scale deviations from the image's mean luma by `factor`, clipped."""

    key = "factor"
    params_doc = {"factor": param(0.7, "contrast factor (1 = unchanged); lo-hi per sample", lo=0, hi=5)}

    def transform(self, x, params, cover):
        mean = luma(x).mean((-2, -1), keepdim=True)
        return (mean + _per_sample(params["factor"], x) * (x - mean)).clamp(0, 1)


@register("saturation")
class Saturation(PerSample):
    """Blend each pixel with its luma: 0 gives grey, 1 the input, above 1 more colour."""

    key = "factor"
    params_doc = {"factor": param(0.5, "saturation factor (1 = unchanged); lo-hi per sample", lo=0, hi=5)}

    def transform(self, x, params, cover):
        grey = luma(x)
        return (grey + _per_sample(params["factor"], x) * (x - grey)).clamp(0, 1)


@register("hue")
class Hue(PerSample):
    """Rotate hue in HSV (kornia.enhance.adjust_hue) by `shift` turns."""

    key = "shift"
    params_doc = {"shift": param(0.05, "hue shift in turns, -0.5..0.5; lo-hi per sample", lo=-0.5, hi=0.5)}

    def transform(self, x, params, cover):
        radians = params["shift"].to(device=x.device, dtype=x.dtype) * 2 * math.pi
        return kornia.enhance.adjust_hue(x, radians).clamp(0, 1)


@register("gamma")
class Gamma(PerSample):
    """Gamma curve x ** gamma (below 1 brightens, above 1 darkens). Black stays black,
    with gradient 0 there (x ** gamma has none at 0 for gamma < 1).
    """

    key = "gamma"
    params_doc = {"gamma": param(1.5, "exponent (1 = unchanged); lo-hi per sample", lo=0.1, hi=10)}

    def transform(self, x, params, cover):
        positive = x > 0
        safe = torch.where(positive, x, torch.ones((), dtype=x.dtype, device=x.device))
        return (safe ** _per_sample(params["gamma"], x)).masked_fill(~positive, 0)


@register("grayscale", "greyscale")
class Grayscale(Attack):
    """Replace each pixel by its Rec. 601 luma in all three channels."""

    def transform(self, x, params, cover):
        return luma(x).clamp(0, 1).repeat(1, 3, 1, 1)
