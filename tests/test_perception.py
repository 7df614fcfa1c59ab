"""JND map and FLIP visibility (wmark.perception)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wmark.perception.flip import flip_vs_jpeg, jpeg_resave, mean_flip
from wmark.perception.jnd import (MIN_REDUCED, background_luminance, contrast_threshold, jnd_map, luma,
                                  luminance_threshold)


def test_chou_li_luminance_threshold():
    """Chou & Li: 20 levels on black, 3 at mid-grey (127), rising slowly towards white."""
    values = luminance_threshold(torch.tensor([0.0, 127.0, 255.0]).view(3, 1, 1, 1).expand(3, 1, 8, 8).contiguous())
    assert values[:, 0, 4, 4].tolist() == pytest.approx([20.0, 3.0, 6.0], abs=1e-4)


def test_contrast_masking_grows_with_texture():
    flat = torch.full((1, 1, 16, 16), 128.0)
    edge = flat.clone()
    edge[..., 8:] = 200
    assert contrast_threshold(flat).abs().max() < 1e-6
    assert contrast_threshold(edge)[0, 0, 8, 8] > 5


def _convolved(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    pad = kernel.shape[-1] // 2
    return F.conv2d(F.pad(y, (pad,) * 4, mode="replicate"), kernel[None, None])


def test_filters_match_their_kernels():
    """The shifted-slice filters equal Chou & Li's 5x5 background kernel and the Sobel kernels as convolutions."""
    y = torch.rand(2, 1, 37, 53, generator=torch.Generator().manual_seed(0)) * 255
    ring = torch.tensor([[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 0, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]]) / 32
    assert torch.allclose(background_luminance(y), _convolved(y, ring.float()), atol=1e-3)
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gradient = torch.sqrt(_convolved(y, sobel) ** 2 + _convolved(y, sobel.T) ** 2)
    assert torch.allclose(contrast_threshold(y), 0.115 * 16 * gradient**2.4 / (gradient**2 + 26**2), atol=1e-3)


def test_jnd_map_shape_and_range():
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    jnd = jnd_map(x)
    assert jnd.shape == (2, 1, 32, 48) and jnd.min() >= 2.9


def _full_resolution_jnd(x: torch.Tensor) -> torch.Tensor:
    y = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True) * 255
    lum, con = luminance_threshold(y), contrast_threshold(y)
    return lum + con - 0.3 * torch.minimum(lum, con)


def test_jnd_map_at_half_resolution_matches_the_full_one_on_flat_areas_and_still_masks_edges():
    x = torch.full((1, 3, 128, 192), 0.2)
    x[..., 96:] = 0.6  # a dark and a bright flat area, one vertical edge
    half, full = jnd_map(x), _full_resolution_jnd(x)
    assert half.shape == full.shape
    assert torch.allclose(half[..., :88], full[..., :88], atol=1e-3)
    assert torch.allclose(half[..., 104:], full[..., 104:], atol=1e-3)
    assert half[0, 0, 64, 94:98].max() > full[0, 0, 64, 40] + 5  # the edge is masked


def test_a_small_image_keeps_a_full_resolution_jnd_map():
    x = torch.rand(1, 3, 2 * MIN_REDUCED - 1, 80, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(jnd_map(x), _full_resolution_jnd(x), atol=1e-4)


def test_flip_is_zero_for_identical_images_and_grows_with_the_change(photo):
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert mean_flip(original, original) == 0
    noisy = np.clip(original + np.random.default_rng(0).normal(0, 4, original.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(original + np.random.default_rng(0).normal(0, 12, original.shape), 0, 255).astype(np.uint8)
    assert 0 < mean_flip(original, noisy) < mean_flip(original, noisier)


def test_flip_ratio_to_a_jpeg_resave(photo):
    original = np.asarray(Image.open(photo).convert("RGB"))
    report = flip_vs_jpeg(original, jpeg_resave(original))
    assert report["flip_ratio"] == pytest.approx(1.0)


def test_jnd_of_luma_equals_jnd_of_the_rgb_image():
    x = torch.rand(1, 3, 80, 120, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(jnd_map(luma(x)), jnd_map(x), atol=1e-4)
    assert torch.allclose(jnd_map(x, scale=0.125), jnd_map(x) / 8, atol=1e-5)
