"""The torch FLIP against the reference flip-evaluator, and its gradient."""
import numpy as np
import pytest
import torch
from PIL import Image

from wmark.io.image import from_uint8
from wmark.perception.flip import jpeg_resave, mean_flip as reference_flip
from wmark.perception.flip_torch import flip_map, mean_flip


@pytest.fixture(scope="module")
def original(photo) -> np.ndarray:
    return np.asarray(Image.open(photo).convert("RGB"))


def _changes(original: np.ndarray) -> dict[str, np.ndarray]:
    noise = np.random.default_rng(0).normal(0, 3, original.shape)
    return {"jpeg75": jpeg_resave(original), "jpeg30": jpeg_resave(original, 30),
            "noise3": np.clip(original + noise, 0, 255).round().astype(np.uint8)}


def test_mean_flip_matches_the_reference_implementation(original):
    for name, changed in _changes(original).items():
        ours = float(mean_flip(from_uint8(original)[None], from_uint8(changed)[None]))
        assert ours == pytest.approx(reference_flip(original, changed), rel=0.005), name


def test_a_batch_is_scored_image_by_image(original):
    changed = list(_changes(original).values())
    batch = mean_flip(from_uint8(original)[None].expand(3, -1, -1, -1), torch.stack([from_uint8(c) for c in changed]))
    single = [float(mean_flip(from_uint8(original)[None], from_uint8(c)[None])) for c in changed]
    assert batch.tolist() == pytest.approx(single, rel=1e-5)


def test_flip_has_a_finite_gradient_that_shrinks_a_residual(original):
    cover = from_uint8(original)[None, :, :96, :128]
    residual = (torch.randn_like(cover) * 4 / 255).requires_grad_(True)
    loss = mean_flip(cover, cover + residual).mean()
    loss.backward()
    assert torch.isfinite(residual.grad).all() and residual.grad.abs().sum() > 0
    optimizer = torch.optim.Adam([residual], lr=2e-3)
    for _ in range(5):
        optimizer.zero_grad()
        mean_flip(cover, cover + residual).mean().backward()
        optimizer.step()
    assert float(mean_flip(cover, cover + residual.detach()).mean()) < 0.8 * loss.item()


def test_identical_images_score_near_zero_and_shapes_are_checked(original):
    x = from_uint8(original)[None]
    assert float(flip_map(x, x).max()) < 1e-3
    with pytest.raises(ValueError):
        flip_map(x, x[..., :10])
