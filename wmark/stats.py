"""Bit accuracy, exact binomial p-values, detection thresholds and image quality metrics."""

import math
from fractions import Fraction

import kornia
import torch

from wmark.errors import WmarkError
from wmark.interface.defaults import DEFAULT_FPR


def check_fpr(fpr: float) -> None:
    """Refuse a false-positive rate outside (0, 1]."""
    if not 0 < fpr <= 1:
        raise WmarkError(f"false-positive rate must be in (0, 1], got {fpr}")


def bit_confidence(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim of 2·sigmoid(|logit|) - 1: 0 for a coin toss, 1 for certainty."""
    return (2 * torch.sigmoid(logits.abs()) - 1).mean(-1)


def logit_magnitude(logits: torch.Tensor) -> float:
    """Median absolute decoder logit of one codeword (L,): how strongly the decoder commits, whatever the bits
    are, so it is the same under any key. Clean images give small values, marked ones large."""
    return float(logits.float().abs().median())


def combine_frames(logits: torch.Tensor) -> torch.Tensor:
    """One codeword's logits (L,) from a video's frames' logits (N, L): their mean, each frame weighted by its
    median |logit| (a matched filter). A codec keeps the mark in its intra frames, while motion compensation
    moves it off the tile grid in the others, which then read near zero and would only add noise."""
    weights = logits.float().abs().median(1).values
    if not weights.sum() > 0:
        return logits.float().mean(0)
    return (logits.float() * weights[:, None]).sum(0) / weights.sum()


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


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11) -> torch.Tensor:
    """SSIM per image for [0, 1] images (B, C, H, W).

    Wang et al. 2004 through kornia: gaussian window (11, sigma 1.5), K1=0.01, K2=0.03, no
    padding, per channel and averaged over channels and positions. The window shrinks to the
    image for images under 11 pixels.
    """
    size = min(window, a.shape[-2], a.shape[-1])
    size -= 1 - size % 2  # kornia needs an odd window
    return kornia.metrics.ssim(a.float(), b.float(), size, padding="valid").flatten(1).double().mean(1)
