"""The any-resolution pipeline."""
from __future__ import annotations

import pytest
import torch

import wmark
from wmark import pipeline, zoo


@pytest.fixture(scope="module")
def model():
    return zoo.build("hidden", message_bits=16, size=64, channels=8, encoder_blocks=2, decoder_blocks=3).eval()


@pytest.mark.parametrize("height,width", [(64, 64), (64, 300), (480, 64), (333, 517), (1080, 1920)])
def test_any_size_and_aspect(model, height, width):
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    message = torch.ones(1, 16)
    marked = pipeline.embed(model, x, message, strength=0.5)
    assert marked.shape == x.shape and marked.min() >= 0 and marked.max() <= 1
    assert pipeline.decode(model, marked).shape == (1, 16)


@pytest.mark.parametrize("height,width", [(63, 200), (200, 10)])
def test_too_small_is_a_user_error(model, height, width):
    with pytest.raises(wmark.WmarkError, match="at least 64 px"):
        pipeline.embed(model, torch.rand(1, 3, height, width), torch.ones(1, 16), 1.0)


def test_strength_scales_the_residual(model):
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    message = -torch.ones(1, 16)
    weak = pipeline.embed(model, x, message, strength=0.01) - x
    strong = pipeline.embed(model, x, message, strength=0.02) - x
    assert torch.allclose(strong, 2 * weak, atol=1e-6)


def test_residual_upscaled_from_native(model):
    """The model runs at native size: the full-size residual is the upscaled native one."""
    x = torch.full((1, 3, 256, 256), 0.5)
    message = torch.ones(1, 16)
    native = model.residual(pipeline.to_native(x, 64), message)
    full = pipeline.embed(model, x, message, strength=0.01) - x
    assert torch.allclose(full, 0.01 * pipeline.from_native(native, 256, 256), atol=1e-6)


def test_quantize_rounds():
    x = torch.tensor([0.0, 0.5 / 255, 1.49 / 255, 1.51 / 255, 1.2, -0.1])
    assert (pipeline.quantize(x) * 255).tolist() == [0, 0, 1, 2, 255, 0]

