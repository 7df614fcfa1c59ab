"""One FLIP calibration rule (wmark.perception.calibrate): whole pictures, 8-bit marked, median over photos."""
import numpy as np
import pytest
import torch
from PIL import Image

from wmark.errors import WmarkError
from wmark.io.image import from_uint8, to_uint8
from wmark.perception.calibrate import flip_ratio, marked_at, median_flip_ratio, strength_for_flip
from wmark.perception.flip import flip_vs_jpeg


@pytest.fixture(scope="module")
def covers(photo) -> list[torch.Tensor]:
    """Three 96 x 144 pieces of the fixture photo: calibration is per photo, then a median."""
    image = from_uint8(np.asarray(Image.open(photo).convert("RGB")))[None]
    return [image[..., top:top + 96, left:left + 144] for top, left in ((0, 0), (40, 60), (90, 100))]


@pytest.fixture(scope="module")
def residuals(covers) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(cover.shape, generator=generator) * 0.01 for cover in covers]


def test_the_ratio_is_the_reference_flip_ratio_of_the_saved_file(covers, residuals):
    cover, marked = covers[0], marked_at(covers[0], residuals[0], 0.5)
    reference = flip_vs_jpeg(to_uint8(cover[0]), to_uint8(marked[0]))["flip_ratio"]
    assert flip_ratio(cover, marked) == pytest.approx(reference, rel=0.01)


@pytest.mark.parametrize("target", [0.3, 1.0])
def test_the_strength_found_measures_the_target(covers, residuals, target):
    found = strength_for_flip(covers, residuals, target)
    assert found.photos == 3
    assert found.ratio == pytest.approx(target, rel=0.03)  # measured there, not fitted
    assert median_flip_ratio(covers, residuals, found.strength) == pytest.approx(found.ratio)


def test_a_target_out_of_reach_is_an_error_not_the_bound(covers, residuals):
    with pytest.raises(WmarkError, match="no strength"):
        strength_for_flip(covers, residuals, 1e-6)
