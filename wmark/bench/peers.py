"""Peer methods from invisible-watermark (``pip install 'wmark[peers]'``), for side-by-side benchmarks.

``imwatermark:dwtDct`` (DWT + DCT, bit votes tiled over 4x4 blocks of the U channel's DWT band),
``imwatermark:dwtDctSvd`` (DWT + DCT + SVD, same tiling) and ``imwatermark:rivaGan`` (RivaGAN,
Zhang et al. 2019; its bundled ONNX encoder and decoder, run with onnxruntime) are wrapped behind the
part of the :class:`~wmark.api.Watermarker` interface the benchmark uses: ``name``, ``bits``,
``embed_tensor`` and ``frame_logits``. dwtDct and dwtDctSvd carry :data:`BITS` raw bits (the default
checkpoint's length; invisible-watermark's examples use 32), RivaGAN only 32. They have no strength
knob: their defaults are used. Their decoders give hard bits, returned as ±1 logits. invisible-watermark
refuses images under 256x256 pixels (65,536 px in all).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import torch

from wmark.errors import WmarkError
from wmark.io.image import from_uint8, to_uint8

PREFIX = "imwatermark:"
METHODS = {"dwtDct": None, "dwtDctSvd": None, "rivaGan": 32}  # method -> fixed payload length
BITS = 64
MIN_PIXELS = 256 * 256


def available() -> list[str]:
    """The peer model names usable in this installation."""
    if importlib.util.find_spec("imwatermark") is None:
        return []
    has_onnx = importlib.util.find_spec("onnxruntime") is not None
    return [PREFIX + m for m in METHODS if m != "rivaGan" or has_onnx]


def is_peer(name: str) -> bool:
    return str(name).startswith(PREFIX)


class Peer:
    """One invisible-watermark method; images go in and out as RGB float batches."""

    def __init__(self, name: str) -> None:
        method = name[len(PREFIX):]
        if method not in METHODS:
            raise WmarkError(f"unknown peer {name!r}; valid: {', '.join(PREFIX + m for m in METHODS)}")
        if name not in available():
            raise WmarkError(f"{name} needs invisible-watermark (and onnxruntime for rivaGan): "
                             "pip install 'wmark[peers]'")
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        if method == "rivaGan":
            WatermarkEncoder.loadModel()
        self.name, self.method = name, method
        self.bits = METHODS[method] or BITS
        self._encoder, self._decoder = WatermarkEncoder(), WatermarkDecoder("bits", self.bits)

    def _bgr(self, x: torch.Tensor) -> list[np.ndarray]:
        if x.shape[-2] * x.shape[-1] < MIN_PIXELS:
            raise WmarkError(f"{self.name} needs images of at least {MIN_PIXELS} px, got "
                             f"{x.shape[-1]}x{x.shape[-2]}")
        return [np.ascontiguousarray(a[..., ::-1]) for a in to_uint8(x)]

    def embed_tensor(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None = None,
                     video: bool = False) -> torch.Tensor:
        """Mark a float batch (B, 3, H, W) with the (L,) 0/1 codeword; returns 8-bit values as floats. Video
        frames are marked as images."""
        self._encoder.set_watermark("bits", [int(b) for b in codeword.tolist()])
        marked = [self._encoder.encode(bgr, self.method)[..., ::-1] for bgr in self._bgr(x)]
        return from_uint8(np.stack(marked))

    def frame_logits(self, x: torch.Tensor, video: bool = False) -> torch.Tensor:
        """±1 logits (B, L) from the decoded hard bits. Video frames are read as images."""
        bits = [np.asarray(self._decoder.decode(bgr, self.method), dtype=np.float32) for bgr in self._bgr(x)]
        return torch.from_numpy(np.stack(bits)) * 2 - 1
