"""Visibility of a change: NVIDIA FLIP (Andersson et al., "FLIP: A Difference Evaluator for Alternating
Images", HPG 2020), through its reference implementation, the ``flip-evaluator`` package.

Reported as the mean FLIP error over the image (0: identical, 1: maximal), at FLIP's default
67 pixels per degree, and as a ratio to the mean FLIP of a JPEG quality 75 re-save of the same
image: a scale that does not depend on the photo's content.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from wmark.errors import WmarkError

REFERENCE_QUALITY = 75


def _flip():
    try:
        import flip_evaluator
    except ImportError:
        raise WmarkError("FLIP needs the flip-evaluator package: pip install flip-evaluator") from None
    return flip_evaluator


def mean_flip(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean FLIP error between two (H, W, 3) uint8 sRGB images of the same size."""
    if reference.shape != test.shape:
        raise WmarkError(f"FLIP compares images of one size, got {reference.shape} and {test.shape}")
    to_float = lambda a: np.ascontiguousarray(a, dtype=np.float32) / 255  # noqa: E731
    _, mean, _ = _flip().evaluate(to_float(reference), to_float(test), "LDR", applyMagma=False)
    return float(mean)


def jpeg_resave(image: np.ndarray, quality: int = REFERENCE_QUALITY) -> np.ndarray:
    """The image after a JPEG re-save through Pillow's libjpeg (4:2:0, Pillow's defaults)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def flip_vs_jpeg(original: np.ndarray, marked: np.ndarray) -> dict:
    """Mean FLIP of ``marked`` against ``original``, and its ratio to a JPEG 75 re-save's FLIP."""
    marked_flip, jpeg_flip = _flips(original, marked)
    return {"flip": round(marked_flip, 5), "flip_jpeg75": round(jpeg_flip, 5),
            "flip_ratio": round(marked_flip / jpeg_flip, 4) if jpeg_flip > 0 else None}


def _flips(original: np.ndarray, marked: np.ndarray) -> tuple[float, float]:
    """(mean FLIP of ``marked``, mean FLIP of a JPEG 75 re-save), both against ``original``."""
    return mean_flip(original, marked), mean_flip(original, jpeg_resave(original))


SAMPLE = 512
"""Side of the centre crop that :func:`sampled_flip_ratio` measures at 1:1 (FLIP takes about 1 s for it on a
CPU core, against several seconds for a whole 2 MP frame)."""


def sampled_flip_ratio(original: np.ndarray, marked: np.ndarray, sample: int = SAMPLE) -> tuple[float, float]:
    """(mean FLIP, ratio to JPEG 75's) on the centre ``sample`` x ``sample`` crop of two (H, W, 3) uint8 images,
    at 1:1 so the viewing geometry (67 pixels per degree) is unchanged; the JPEG 75 re-save is of the crop."""
    height, width = original.shape[:2]
    top, left = max(0, (height - sample) // 2), max(0, (width - sample) // 2)
    crop = lambda a: np.ascontiguousarray(a[top:top + sample, left:left + sample])  # noqa: E731
    flip, reference = _flips(crop(original), crop(marked))
    return flip, flip / reference if reference > 0 else float("nan")
