"""Bit accuracy, exact binomial p-values, detection thresholds and image quality metrics."""

import math
from fractions import Fraction

import torch
import torch.nn.functional as F

DEFAULT_FPR = 1e-6
"""Default false-positive rate for detection: one unmarked image in a million flagged."""


def bit_accuracy(a, b) -> torch.Tensor:
    """Fraction of equal bits along the last dim (a 0-d tensor for single codewords)."""
    a, b = torch.as_tensor(a) != 0, torch.as_tensor(b) != 0
    return (a == b).double().mean(-1)


def binomial_sf(k: int, n: int, p: float = 0.5) -> float:
    """Exact P(X >= k) for X ~ Binomial(n, p), summed in rational arithmetic."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    p = Fraction(p)
    a, d = p.numerator, p.denominator
    total = sum(math.comb(n, i) * a**i * (d - a) ** (n - i) for i in range(k, n + 1))
    return float(Fraction(total, d**n))


def match_p_value(decoded_bits, expected_bits) -> torch.Tensor:
    """P-value that an unmarked image (iid uniform bits) matches at least as many bits.

    Works along the last dim; returns a float64 tensor of the leading shape.
    """
    a, b = torch.as_tensor(decoded_bits) != 0, torch.as_tensor(expected_bits) != 0
    matches = (a == b).sum(-1)
    n = a.shape[-1]
    values = [binomial_sf(int(k), n) for k in matches.reshape(-1)]
    return torch.tensor(values, dtype=torch.float64).reshape(matches.shape)


def match_threshold(n: int, fpr: float = DEFAULT_FPR) -> int:
    """Smallest number of matching bits k with binomial_sf(k, n) <= fpr.

    Returns n + 1 (never reachable) when even a perfect match is not rare enough.
    """
    k = n + 1
    while k > 0 and binomial_sf(k - 1, n) <= fpr:
        k -= 1
    return k


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for [0, 1] images (B, ...); inf where identical."""
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse)


def _gaussian_window(size: int, sigma: float, channels: int, dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM per image for [0, 1] images (B, C, H, W).

    Wang et al. 2004: gaussian window (11, sigma 1.5), K1=0.01, K2=0.03, no padding,
    computed per channel and averaged over channels and positions. The window shrinks
    to the image size for images smaller than 11 pixels.
    """
    a, b = a.double(), b.double()
    size = min(window, a.shape[-2], a.shape[-1])
    w = _gaussian_window(size, sigma, a.shape[1], a.dtype).to(a.device)

    def blur(x):
        return F.conv2d(x, w, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)
