"""Real image codecs through Pillow (libjpeg, libwebp), with straight-through gradients."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .base import PerSample, from_uint8, param, register, straight_through, to_uint8

_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}  # Pillow's codes


def pillow_roundtrip(x, qualities, fmt: str, **save_options):
    """Encode each (3, H, W) image of `x` as `fmt` at its quality, decode, return floats.

    Works on the uint8-rounded image, as a real file would.
    """
    decoded = []
    for img, quality in zip(to_uint8(x), qualities.tolist()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, quality=int(quality), **save_options)
        buf.seek(0)
        with Image.open(buf) as im:
            decoded.append(np.asarray(im.convert("RGB")))
    return from_uint8(np.stack(decoded), like=x)


@register("jpeg")
class Jpeg(PerSample):
    """Real JPEG (libjpeg via Pillow) with the straight-through estimator.

    Quality 0 is valid (libjpeg treats it as 1). One quality per image (per clip).
    """

    key = "quality"
    grad = "ste"
    params_doc = {
        "quality": param(50, "JPEG quality 0-100; lo-hi draws one per sample", lo=0, hi=100),
        "subsampling": param("420", "chroma subsampling", choices=_SUBSAMPLING),
    }

    def transform(self, x, params, cover):
        sub = _SUBSAMPLING[self.options["subsampling"]]
        return straight_through(x, pillow_roundtrip(x, params["quality"], "JPEG", subsampling=sub))


@register("webp")
class WebP(PerSample):
    """Real lossy WebP (libwebp via Pillow) with the straight-through estimator."""

    key = "quality"
    grad = "ste"
    params_doc = {
        "quality": param(50, "WebP quality 0-100; lo-hi draws one per sample", lo=0, hi=100),
    }

    def transform(self, x, params, cover):
        return straight_through(x, pillow_roundtrip(x, params["quality"], "WEBP"))
