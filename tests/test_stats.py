import itertools
import math

import pytest
import torch

from wmark.stats import (
    DEFAULT_FPR,
    binomial_sf,
    bit_accuracy,
    combine_frames,
    match_p_value,
    match_threshold,
    psnr,
    ssim,
)


def _brute_sf(k, n, p):
    """P(X >= k) by enumerating all 2^n outcomes."""
    total = 0.0
    for outcome in itertools.product([0, 1], repeat=n):
        s = sum(outcome)
        if s >= k:
            total += p**s * (1 - p) ** (n - s)
    return total


@pytest.mark.parametrize("n", [0, 1, 5, 10])
@pytest.mark.parametrize("p", [0.5, 0.3])
def test_binomial_sf_brute_force(n, p):
    for k in range(-1, n + 2):
        assert binomial_sf(k, n, p) == pytest.approx(_brute_sf(k, n, p), rel=1e-12, abs=1e-300)


def test_binomial_sf_exact_half():
    assert binomial_sf(64, 64) == 2.0**-64
    assert binomial_sf(0, 64) == 1.0
    assert binomial_sf(65, 64) == 0.0
    assert binomial_sf(3, 4) == 5 / 16
    assert binomial_sf(1000, 1000) == 2.0**-1000


@pytest.mark.parametrize("n", [8, 30, 48, 64, 100, 256])
@pytest.mark.parametrize("fpr", [DEFAULT_FPR, 1e-3, 0.05])
def test_match_threshold(n, fpr):
    k = match_threshold(n, fpr)
    if k <= n:
        assert binomial_sf(k, n) <= fpr
    assert k == 0 or binomial_sf(k - 1, n) > fpr


def test_match_threshold_unreachable():
    assert match_threshold(10, 1e-6) == 11  # 2^-10 > 1e-6: even 10/10 is not enough


def test_bit_accuracy_and_match_p_value():
    a = torch.tensor([1, 0, 1, 1], dtype=torch.uint8)
    b = torch.tensor([1, 1, 1, 1], dtype=torch.uint8)
    assert float(bit_accuracy(a, b)) == 0.75
    assert float(bit_accuracy([True, False], [1, 0])) == 1.0
    assert float(match_p_value(a, b)) == binomial_sf(3, 4)
    batch = torch.stack([a, b])
    assert bit_accuracy(batch, b).tolist() == [0.75, 1.0]
    assert match_p_value(batch, b).tolist() == [5 / 16, 1 / 16]


def test_match_p_value_identical_64_bits():
    bits = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(0))
    assert float(match_p_value(bits, bits)) == 2.0**-64


def _images(seed=0, shape=(2, 3, 32, 32)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_psnr():
    x = _images()
    assert torch.isinf(psnr(x, x)).all()
    y = torch.zeros(2, 3, 8, 8)
    z = y.clone()
    z[1] += 0.1
    out = psnr(y, z)
    assert out.shape == (2,)
    assert math.isinf(out[0]) and out[1].item() == pytest.approx(20.0)


def test_ssim():
    x = _images()
    assert ssim(x, x).shape == (2,)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    noise = _images(1) - 0.5
    noisy = (x + 0.2 * noise).clamp(0, 1)
    noisier = (x + 0.6 * noise).clamp(0, 1)
    assert (ssim(x, noisy) < 1).all() and (ssim(x, noisier) < ssim(x, noisy)).all()
    assert ssim(x, _images(2)).abs().max() < 0.1  # independent noise images
    assert torch.allclose(ssim(x, noisy), ssim(noisy, x))


def test_ssim_small_images():
    x = _images(shape=(1, 3, 6, 6))
    assert ssim(x, x).item() == pytest.approx(1.0)


def test_combine_frames_weighs_each_frame_by_its_median_magnitude():
    strong = torch.tensor([4.0, -4.0, 4.0, -4.0])
    weak = torch.tensor([-0.5, 0.5, 0.5, 0.5])  # a frame the codec moved the mark off: near zero, half wrong
    assert torch.equal(combine_frames(torch.stack([strong, strong])), strong)
    combined = combine_frames(torch.stack([strong, weak, weak, weak]))
    assert torch.equal(combined > 0, strong > 0)  # the plain mean loses the first bit
    assert not torch.equal(torch.stack([strong, weak, weak, weak, weak, weak, weak, weak, weak]).mean(0) > 0,
                           strong > 0)
    assert torch.equal(combine_frames(torch.zeros(3, 4)), torch.zeros(4))
