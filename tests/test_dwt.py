"""The torch wavelet transform against pywavelets, its inverse, and DWT-CNN's subband embedding."""
from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from wmark import zoo
from wmark.errors import WmarkError
from wmark.models.dwt import SUBBANDS, DWT2d


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym4"])
def test_matches_pywavelets_and_inverts(wavelet):
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    transform = DWT2d(wavelet)
    bands = transform(x)
    low, (horizontal, vertical, diagonal) = pywt.dwt2(x[1, 2].double().numpy(), wavelet, mode="periodization")
    for ours, theirs in zip(bands[1, 2], (low, horizontal, vertical, diagonal)):
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-5)
    assert (transform.inverse(bands) - x).abs().max() < 1e-5


def test_inverse_is_differentiable():
    transform = DWT2d("db2")
    bands = torch.randn(1, 1, 4, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda b: transform.double().inverse(b), (bands,))


def test_bad_wavelets_and_sizes():
    with pytest.raises(WmarkError, match="unknown wavelet"):
        DWT2d("nope")
    with pytest.raises(WmarkError, match="not orthogonal"):
        DWT2d("bior2.2")
    with pytest.raises(WmarkError, match="even sizes"):
        DWT2d()(torch.rand(1, 1, 7, 8))


@pytest.mark.parametrize("subband", SUBBANDS)
@pytest.mark.parametrize("luma", [True, False])
def test_residual_lives_in_the_chosen_subband(subband, luma):
    model = zoo.build("dwtcnn", message_bits=16, size=32, channels=8, subband=subband, luma=luma).eval()
    x = torch.rand(2, 3, 32, 32)
    residual = model.residual(x, torch.ones(2, 16))
    if luma:
        assert torch.equal(residual[:, 0], residual[:, 2])
    energy = model.dwt(residual).pow(2).sum((0, 1, 3, 4))
    chosen = SUBBANDS.index(subband)
    assert energy[chosen] > 0 and energy.sum() - energy[chosen] < 1e-8 * energy[chosen]
