"""Noise layers that keep part of the marked pixels in place: HiDDeN's cropout and dropout
(Zhu et al., ECCV 2018), which take the rest from the cover and need `cover=` (the unmarked
input, same shape) in the call, and MBRS's crop (Jia et al., ACM MM 2021), which blacks it out.
"""

from __future__ import annotations

import math

import torch

from .base import Attack, param, register


class _KeptBox(Attack):
    """Keep a random box of the marked image covering `scale` of the area, in place. Params:
    {"scale": (B,), "top": (B,), "left": (B,)}, with the box position as fractions of the free room.
    """

    params_doc = {"scale": param(0.5, "area fraction of marked pixels kept; lo-hi per sample", lo=0.01, hi=1)}

    def draw(self, shape, generator):
        b, dev = shape[0], generator.device
        return {
            "scale": self.draw_option("scale", b, generator),
            "top": torch.rand(b, generator=generator, device=dev),
            "left": torch.rand(b, generator=generator, device=dev),
        }

    @staticmethod
    def mask(x, params):
        """(B, 1, H, W) bool mask of each sample's box."""
        n, _, h, w = x.shape
        mask = torch.zeros(n, 1, h, w, dtype=torch.bool, device=x.device)
        for i, (s, t, l) in enumerate(zip(*(params[k].tolist() for k in ("scale", "top", "left")))):
            bh, bw = max(1, round(h * math.sqrt(s))), max(1, round(w * math.sqrt(s)))
            top, left = math.floor(t * (h - bh + 1)), math.floor(l * (w - bw + 1))
            mask[i, :, top : top + bh, left : left + bw] = True
        return mask


@register("cropout")
class Cropout(_KeptBox):
    """Keep a random box of the marked image covering `scale` of the area; take the
    rest from the cover (HiDDeN's Cropout)."""

    needs_cover = True

    def transform(self, x, params, cover):
        return torch.where(self.mask(x, params), x, cover)


@register("crop_zero")
class CropZero(_KeptBox):
    """Keep a random box of the marked image covering `scale` of the area, in place, and set
    the rest to black: MBRS's Crop, which its diffusion variant is trained against."""

    def transform(self, x, params, cover):
        return torch.where(self.mask(x, params), x, torch.zeros_like(x))


@register("dropout")
class Dropout(Attack):
    """Keep each marked pixel with probability `keep`, else take the cover pixel.
    The pixel mask is drawn per frame.
    """

    needs_cover = True
    params_doc = {"keep": param(0.5, "probability of keeping a marked pixel; lo-hi per sample", lo=0, hi=1)}

    def draw(self, shape, generator):
        u = torch.rand(*shape[:-3], 1, *shape[-2:], generator=generator, device=generator.device)
        return {"keep": self.draw_option("keep", shape[0], generator), "u": u}

    def transform(self, x, params, cover):
        keep = params["keep"].to(x.device).view(-1, 1, 1, 1)
        return torch.where(params["u"].to(x.device) < keep, x, cover)
