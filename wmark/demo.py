"""``wmark demo``: the whole round trip on a bundled photo."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from wmark.api import load
from wmark.io.atomic import atomic_output
from wmark.io.image import read_image, to_uint8
from wmark.perception.jnd import luma

SAMPLE = "storm.jpg"
DIFF_GAIN = 10.0
CROP = 256


def sample_path() -> Path:
    """The bundled sample photo."""
    return Path(str(resources.files("wmark.samples") / SAMPLE))


def _save_pixels(x: torch.Tensor, path: Path, **options) -> None:
    with atomic_output(path) as tmp:
        Image.fromarray(to_uint8(x)[0]).save(tmp, **options)


def flattest_box(x: torch.Tensor, size: int) -> tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` window of (1, 3, H, W) with the least luma variance, on a
    half-window stride: flat sky or wall, where a mark is easiest to see."""
    y = luma(x)
    size = min(size, *y.shape[-2:])
    stride = max(1, size // 2)
    mean = F.avg_pool2d(y, size, stride)
    variance = F.avg_pool2d(y * y, size, stride) - mean * mean
    row, col = divmod(int(variance.flatten().argmin()), variance.shape[-1])
    return row * stride, col * stride


def side_by_side(original: torch.Tensor, marked: torch.Tensor, size: int = CROP) -> torch.Tensor:
    """A 1:1 crop of the flattest region: original | marked | difference amplified ``DIFF_GAIN`` times."""
    top, left = flattest_box(original, size)
    crop = lambda x: x[..., top:top + size, left:left + size]  # noqa: E731
    difference = ((crop(marked) - crop(original)) * DIFF_GAIN + 0.5).clamp(0, 1)
    return torch.cat([crop(original), crop(marked), difference], dim=-1)


def run_demo(out: Path, model: str | None = None, device: str = "auto") -> dict:
    """Embed a short message into the sample, write marked.png, marked_q75.jpg, diff.png and flat_crop.png,
    extract from each, and measure FLIP beside PSNR."""
    marker = load(model, device=device)
    message = "hi!"[: marker.code().capacity_bytes]
    out.mkdir(parents=True, exist_ok=True)
    report = marker.embed_file(sample_path(), out / "marked.png", message=message, flip=True)
    marked = read_image(out / "marked.png").rgb
    original = read_image(sample_path()).rgb
    _save_pixels(marked, out / "marked_q75.jpg", quality=75)
    compressed = read_image(out / "marked_q75.jpg").rgb
    _save_pixels(((marked - original) * DIFF_GAIN + 0.5).clamp(0, 1), out / "diff.png")
    _save_pixels(side_by_side(original, marked), out / "flat_crop.png")
    reads = [(out / "marked.png", marked), (out / "marked_q75.jpg", compressed), (sample_path(), original)]
    return {
        "model": marker.name,
        "message": message,
        "psnr": report.psnr,
        "ssim": report.ssim,
        "flip": report.flip,
        "flip_ratio": report.flip_ratio,
        "out": str(out),
        "files": {"marked": str(out / "marked.png"), "jpeg75": str(out / "marked_q75.jpg"), "diff_x10": str(out / "diff.png"),
                  "flat_crop": str(out / "flat_crop.png")},
        "results": [_read(marker, path, pixels) for path, pixels in reads],
    }


def _read(marker, path: Path, pixels: torch.Tensor) -> dict:
    """What ``wmark extract`` reports of one of the demo's pictures, in brief."""
    found = marker.extract(pixels)
    return {"path": str(path), "detected": found.detected, "message": found.message, "p_value": found.p_value}
