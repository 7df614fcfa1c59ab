"""HiDDeN's noise layers that mix marked and cover pixels (Zhu et al., ECCV 2018).
Both need `cover=` (the unmarked input, same shape) in the call.
"""

from __future__ import annotations

import math

import torch

from .base import Attack, param, register


@register("cropout")
class Cropout(Attack):
    """Keep a random box of the marked image covering `scale` of the area; take the
    rest from the cover. Params: {"scale": (B,), "top": (B,), "left": (B,)}, with
    the box position as fractions of the free room.
    """

    needs_cover = True
    params_doc = {"scale": param(0.5, "area fraction of marked pixels kept; lo-hi per sample", lo=0.01, hi=1)}

    def draw(self, shape, generator):
        b, dev = shape[0], generator.device
        return {
            "scale": self.draw_option("scale", b, generator),
            "top": torch.rand(b, generator=generator, device=dev),
            "left": torch.rand(b, generator=generator, device=dev),
        }

    def transform(self, x, params, cover):
        n, _, h, w = x.shape
        mask = torch.zeros(n, 1, h, w, dtype=torch.bool, device=x.device)
        for i, (s, t, l) in enumerate(zip(*(params[k].tolist() for k in ("scale", "top", "left")))):
            bh, bw = max(1, round(h * math.sqrt(s))), max(1, round(w * math.sqrt(s)))
            top, left = math.floor(t * (h - bh + 1)), math.floor(l * (w - bw + 1))
            mask[i, :, top : top + bh, left : left + bw] = True
        return torch.where(mask, x, cover)


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
