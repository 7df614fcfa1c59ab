"""Each differentiable proxy against the real codec it imitates, on crops of a real photo.

PSNR(proxy(x), real(x)) in dB, mean over two 128x128 crops of tests/fixtures/photo.jpg;
the floors sit about 1 dB under the values measured when they were set (in comments).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import attacks

BOXES = [(40, 60), (140, 300)]  # (top, left) of the 128x128 crops


@pytest.fixture(scope="module")
def full(photo):
    a = np.asarray(Image.open(photo).convert("RGB"))
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def crops(full):
    return torch.stack([full[:, t : t + 128, l : l + 128] for t, l in BOXES])


@pytest.fixture(scope="module")
def clips(full):
    """4-frame clips panning 1 px right and 0.5 px down a frame."""
    return torch.stack([
        torch.stack([full[:, t + i // 2 : t + i // 2 + 128, l + i : l + i + 128] for i in range(4)])
        for t, l in BOXES
    ])


def psnr(a, b) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


@pytest.mark.parametrize(
    "spec, quality, floor",
    [
        ("jpeg_diff:quality=50", 50, 43.5),  # measured 44.4
        ("jpeg_diff:quality=90", 90, 48.0),  # 48.8
        ("jpeg_cubic:quality=50", 50, 46.5),  # 47.5
        ("jpeg_cubic:quality=90", 90, 49.0),  # 50.1
        ("jpeg_mask", 50, 38.0),  # 39.2
        ("jpeg_drop", 50, 37.0),  # 38.1
    ],
)
def test_jpeg_proxy_near_real_jpeg(crops, spec, quality, floor):
    proxy = attacks.create(spec)
    params = proxy.sample(crops.shape, torch.Generator().manual_seed(0))
    real = attacks.create("jpeg", quality=quality)(crops)
    assert psnr(proxy(crops, params), real) > floor


@pytest.mark.parametrize(
    "crf, floor",
    [(18, 39.0), (23, 37.5), (28, 35.3), (35, 32.9)],  # measured 40.1, 38.5, 36.4, 33.9
)
def test_h264_proxy_near_real_h264(clips, crf, floor):
    if "h264" not in attacks.names():
        pytest.skip("no H.264 encoder")
    real = attacks.create("h264", crf=crf)(clips)
    proxy = attacks.create("h264_proxy", crf=crf)(clips)
    assert psnr(proxy.flatten(0, 1), real.flatten(0, 1)) > floor
    # Calibration: the proxy loses about as much as the codec (measured gaps 0.8, 0.1, -1.0, -1.2 dB).
    flat = clips.flatten(0, 1)
    assert abs(psnr(proxy.flatten(0, 1), flat) - psnr(real.flatten(0, 1), flat)) < 2.0
