"""A one-level 2-D discrete wavelet transform in torch, with filters from pywavelets.

Periodic extension ("periodization" in pywavelets): an image of even size H×W gives four
subbands of H/2×W/2. For an orthogonal wavelet the transform is orthonormal, so its inverse is
its adjoint: a transposed convolution with the same filters, with the wrapped-around borders
folded back. Both directions are differentiable and the round trip is exact to float precision.
"""
from __future__ import annotations

import pywt
import torch
import torch.nn.functional as F
from torch import nn

from wmark.errors import WmarkError

SUBBANDS = ("LL", "LH", "HL", "HH")


class DWT2d(nn.Module):
    """``forward`` maps (B, C, H, W) to (B, C, 4, H/2, W/2) in the order of :data:`SUBBANDS`."""

    def __init__(self, wavelet: str = "haar") -> None:
        super().__init__()
        try:
            filters = pywt.Wavelet(wavelet)
        except ValueError:
            raise WmarkError(f"unknown wavelet {wavelet!r}; see pywt.wavelist(kind='discrete')") from None
        if not filters.orthogonal:
            raise WmarkError(f"wavelet {wavelet!r} is not orthogonal; use e.g. haar, db2 or sym4")
        low = torch.tensor(filters.dec_lo[::-1], dtype=torch.float64)
        high = torch.tensor(filters.dec_hi[::-1], dtype=torch.float64)
        bank = torch.stack([torch.outer(a, b) for a, b in ((low, low), (high, low), (low, high), (high, high))])
        self.register_buffer("bank", bank.unsqueeze(1).float(), persistent=False)
        self.wavelet = wavelet
        extra = len(filters.dec_lo) - 2  # the periodic extension each side needs, split like pywavelets
        self.before, self.after = extra // 2, extra - extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise WmarkError(f"the wavelet transform needs even sizes, got {w}x{h}")
        planes = x.reshape(b * c, 1, h, w)
        if self.before or self.after:
            planes = F.pad(planes, (self.before, self.after, self.before, self.after), mode="circular")
        bands = F.conv2d(planes, self.bank.to(x.dtype), stride=2)
        return bands.reshape(b, c, 4, h // 2, w // 2)

    def inverse(self, bands: torch.Tensor) -> torch.Tensor:
        b, c, _, h, w = bands.shape
        planes = F.conv_transpose2d(bands.reshape(b * c, 4, h, w), self.bank.to(bands.dtype), stride=2)
        planes = self._fold(self._fold(planes, 2 * h, -2), 2 * w, -1)
        return planes.reshape(b, c, 2 * h, 2 * w)

    def _fold(self, planes: torch.Tensor, n: int, dim: int) -> torch.Tensor:
        """Adjoint of the periodic extension along ``dim``: add the overhangs back where they came from."""
        if not (self.before or self.after):
            return planes
        core = planes.narrow(dim, self.before, n).clone()
        core.narrow(dim, n - self.before, self.before).add_(planes.narrow(dim, 0, self.before))
        core.narrow(dim, 0, self.after).add_(planes.narrow(dim, self.before + n, self.after))
        return core
