"""Geometric attacks: resize and crop (which change the size); rotation, flip,
translation and StegaStamp's perspective warp (Tancik et al., CVPR 2020), which keep
it. Nothing is resized back behind the caller's back.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F

from .base import Attack, PerSample, param, register

_INTERPOLATION = ("bilinear", "bicubic", "nearest", "area")


def _scaled(size: int, factor: float) -> int:
    return max(1, round(size * factor))


@register("resize")
class Resize(Attack):
    """Rescale by `scale` (one draw per batch, since the batch shares a size), the width by `width` times
    more (an aspect change: `scale=1,width=0.8` squeezes the width alone).
    Bilinear and bicubic downscaling are antialiased; bicubic output is clipped.
    """

    changes_size = True
    params_doc = {
        "scale": param(0.5, "size factor; lo-hi draws one per batch", lo=0.05, hi=8),
        "width": param(1.0, "extra factor of the width alone (aspect change)", lo=0.05, hi=8),
        "interpolation": param("bilinear", "resampling filter", choices=_INTERPOLATION),
    }

    def draw(self, shape, generator):
        return {"scale": self.draw_option("scale", 1, generator)[0]}

    def output_shape(self, shape, params):
        s = float(params["scale"])
        return (*shape[:-2], _scaled(shape[-2], s), _scaled(shape[-1], s * float(self.options["width"])))

    def transform(self, x, params, cover):
        size = self.output_shape(x.shape, params)[-2:]
        mode = self.options["interpolation"]
        smooth = mode in ("bilinear", "bicubic")
        y = F.interpolate(
            x, size=size, mode=mode, antialias=smooth, align_corners=False if smooth else None
        )
        return y.clamp(0, 1)


@register("crop")
class Crop(Attack):
    """Keep a random box covering `scale` of the area, with the image's aspect ratio.
    The box size is drawn once per batch, its position per sample (per clip).
    Params: {"scale": area fraction, "top": (B,), "left": (B,)} in pixels.
    """

    changes_size = True
    params_doc = {"scale": param(0.5, "area fraction kept; lo-hi draws one per batch", lo=0.01, hi=1)}

    def draw(self, shape, generator):
        scale = self.draw_option("scale", 1, generator)[0]
        h, w = self.output_shape(shape, {"scale": scale})[-2:]
        b, dev = shape[0], generator.device
        return {
            "scale": scale,
            "top": torch.randint(0, shape[-2] - h + 1, (b,), generator=generator, device=dev),
            "left": torch.randint(0, shape[-1] - w + 1, (b,), generator=generator, device=dev),
        }

    def output_shape(self, shape, params):
        side = math.sqrt(float(params["scale"]))
        return (*shape[:-2], _scaled(shape[-2], side), _scaled(shape[-1], side))

    def transform(self, x, params, cover):
        h, w = self.output_shape(x.shape, params)[-2:]
        tops, lefts = params["top"].tolist(), params["left"].tolist()
        return torch.stack([img[:, t : t + h, l : l + w] for img, t, l in zip(x, tops, lefts)])


@register("rotate")
class Rotate(PerSample):
    """Rotate about the centre by `degrees` (counter-clockwise), same size, corners black."""

    key = "degrees"
    params_doc = {"degrees": param(10.0, "angle; lo-hi draws one per sample", lo=-180, hi=180)}

    def transform(self, x, params, cover):
        angle = params["degrees"].to(device=x.device, dtype=x.dtype)
        return kornia.geometry.transform.rotate(x, angle).clamp(0, 1)


@register("perspective")
class Perspective(Attack):
    """StegaStamp's perspective warp: each corner moves by up to `shift` of the image
    size in x and y, uniformly at random; same size, uncovered area black.
    Params: {"corners": (B, 4, 2) corner offsets as fractions of (W, H)}.
    """

    params_doc = {"shift": param(0.1, "largest corner move as a fraction of the size; lo-hi per sample", lo=0, hi=0.5)}

    def draw(self, shape, generator):
        b, dev = shape[0], generator.device
        shift = self.draw_option("shift", b, generator).float().view(b, 1, 1)
        u = torch.rand(b, 4, 2, generator=generator, device=dev) * 2 - 1
        return {"corners": u * shift}

    def transform(self, x, params, cover):
        n, _, h, w = x.shape
        size = torch.tensor([w - 1, h - 1], device=x.device, dtype=x.dtype)
        unit = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], device=x.device, dtype=x.dtype)
        src = (unit * size).expand(n, 4, 2)
        dst = src + params["corners"].to(device=x.device, dtype=x.dtype) * size
        m = kornia.geometry.transform.get_perspective_transform(src, dst)
        return kornia.geometry.transform.warp_perspective(x, m, (h, w)).clamp(0, 1)


@register("hflip")
class HFlip(Attack):
    """Mirror left to right."""

    def transform(self, x, params, cover):
        return x.flip(-1)


@register("translate")
class Translate(Attack):
    """Shift by whole pixels, `dx` of the width right and `dy` of the height down
    (rounded to the nearest pixel), same size. `mode=fill` leaves the uncovered
    area black; `mode=wrap` shifts circularly (as torch.roll).
    Params: {"dx": (B,), "dy": (B,)} as fractions.
    """

    params_doc = {
        "dx": param(0.1, "shift right as a fraction of the width; lo-hi per sample", lo=-1, hi=1),
        "dy": param(0.1, "shift down as a fraction of the height; lo-hi per sample", lo=-1, hi=1),
        "mode": param("fill", "uncovered area: black (fill) or wrapped (wrap)", choices=("fill", "wrap")),
    }

    def draw(self, shape, generator):
        return {key: self.draw_option(key, shape[0], generator) for key in ("dx", "dy")}

    def transform(self, x, params, cover):
        h, w = x.shape[-2:]
        wrap = self.options["mode"] == "wrap"
        out = []
        for img, dx, dy in zip(x, params["dx"].tolist(), params["dy"].tolist()):
            sy, sx = round(dy * h), round(dx * w)
            moved = img.roll((sy, sx), dims=(-2, -1))
            if not wrap:
                rows = torch.arange(h, device=x.device) - sy
                cols = torch.arange(w, device=x.device) - sx
                inside = ((rows >= 0) & (rows < h)).view(h, 1) & ((cols >= 0) & (cols < w)).view(1, w)
                moved = torch.where(inside, moved, torch.zeros((), dtype=x.dtype, device=x.device))
            out.append(moved)
        return torch.stack(out)
