"""Filters: median (a classic removal attack on additive marks) and unsharp-mask
sharpening, both same size; edges are replicated.
"""

from __future__ import annotations

import math

import kornia
import torch

from .base import Attack, AttackError, PerSample, param, register
from .photometric import gaussian_blur


@register("median")
class Median(Attack):
    """Median of each `size` x `size` window, per channel (kornia.filters.median_blur).
    The gradient goes to the pixel picked as the median (exact almost everywhere).
    """

    params_doc = {"size": param(3, "odd window side; 1 = unchanged", lo=1, hi=15, range=False)}

    @classmethod
    def resolve_options(cls, options):
        resolved = super().resolve_options(options)
        if resolved["size"] % 2 == 0:
            size = resolved["size"]
            raise AttackError(f"{cls.label()}: bad value {size} for 'size'; expected an odd integer in [1, 15]")
        return resolved

    def transform(self, x, params, cover):
        return kornia.filters.median_blur(x, self.options["size"], border_type="replicate")


@register("sharpen")
class Sharpen(PerSample):
    """Unsharp mask: x + amount * (x - gaussian_blur(x, sigma)), clipped."""

    key = "amount"
    params_doc = {
        "amount": param(1.0, "strength (0 = unchanged); lo-hi per sample", lo=0, hi=10),
        "sigma": param(1.0, "blur sigma of the mask in pixels", lo=0.1, hi=10, range=False),
    }

    def transform(self, x, params, cover):
        sigma = self.options["sigma"]
        blurred = gaussian_blur(x, torch.full((x.shape[0],), sigma), math.ceil(3 * sigma))
        amount = params["amount"].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        return (x + amount * (x - blurred)).clamp(0, 1)
