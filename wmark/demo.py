"""``wmark demo``: the whole round trip on a bundled photo."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
from PIL import Image

from wmark.api import load
from wmark.io.atomic import atomic_output
from wmark.io.image import read_image, to_uint8

SAMPLE = "storm.jpg"
DIFF_GAIN = 10.0


def sample_path() -> Path:
    """The bundled sample photo."""
    return Path(str(resources.files("wmark.samples") / SAMPLE))


def _save_pixels(x: torch.Tensor, path: Path, **options) -> None:
    with atomic_output(path) as tmp:
        Image.fromarray(to_uint8(x)[0]).save(tmp, **options)


def run_demo(out: Path, model: str | None = None, device: str = "auto") -> dict:
    """Embed a short message into the sample, write marked.png, marked_q75.jpg and diff.png, extract from each."""
    marker = load(model, device=device)
    message = "hi!"[: marker.code().capacity_bytes]
    out.mkdir(parents=True, exist_ok=True)
    report = marker.embed_file(sample_path(), out / "marked.png", message=message)
    marked = read_image(out / "marked.png").rgb
    original = read_image(sample_path()).rgb
    _save_pixels(marked, out / "marked_q75.jpg", quality=75)
    compressed = read_image(out / "marked_q75.jpg").rgb
    _save_pixels(((marked - original) * DIFF_GAIN + 0.5).clamp(0, 1), out / "diff.png")
    clean = marker.extract(marked)
    after_jpeg = marker.extract(compressed)
    unmarked = marker.extract(original)
    return {
        "model": marker.name,
        "message": message,
        "psnr_db": report.psnr,
        "ssim": report.ssim,
        "extracted": clean.message,
        "extracted_after_jpeg75": after_jpeg.message,
        "detected_after_jpeg75": after_jpeg.detected,
        "p_value_after_jpeg75": after_jpeg.p_value,
        "detected_on_original": unmarked.detected,
        "outputs": str(out),
        "files": {"marked": str(out / "marked.png"), "jpeg75": str(out / "marked_q75.jpg"), "diff_x10": str(out / "diff.png")},
    }
