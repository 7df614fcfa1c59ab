"""DWT-CNN: Tavakoli, Honjani, Sajedi, "Convolutional Neural Network-Based Image Watermarking using
Discrete Wavelet Transform", arXiv:2210.06179 (2022)."""
from __future__ import annotations

import torch
from torch import nn

from attacks.colour import BT601_LUMA
from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU, downsampling, halvings, resize_to, upsampling
from wmark.models.dwt import SUBBANDS, DWT2d
from wmark.zoo import register_family


@register_family("dwtcnn")
class DWTCNN(WatermarkModel):
    """A CNN embedder and extractor working on one wavelet subband.

    The image (its luma Y, or all three channels) is split by a one-level DWT (``wavelet`` from
    pywavelets, Haar by default). The message goes through a linear layer to a ``plane``×``plane``
    map and transposed convolutions up to the subband's size; the embedder sees it with the chosen
    ``subband`` and predicts that subband's change, which the inverse DWT turns into the residual
    (on luma, the same residual on R, G and B). LL is the more robust band, the detail bands
    (LH, HL, HH) the less visible. The extractor reads the same subband: strided convolutions down
    to ``plane``×``plane`` and a linear layer to L logits; it resizes any input to the native size.
    """

    family = "dwtcnn"

    def __init__(self, message_bits: int = 32, size: int = 64, channels: int = 32, subband: str = "LL",
                 luma: bool = True, wavelet: str = "haar", plane: int = 8) -> None:
        super().__init__(message_bits, size)
        if subband not in SUBBANDS:
            raise ValueError(f"subband must be one of {', '.join(SUBBANDS)}")
        half = size // 2
        steps = halvings(half, plane, "size / 2")
        self.band, self.luma, self.plane, self.channels = SUBBANDS.index(subband), luma, plane, channels
        planes = 1 if luma else 3
        self.dwt = DWT2d(wavelet)
        self.register_buffer("luma_weights", torch.tensor(BT601_LUMA).view(1, 3, 1, 1), persistent=False)
        self.message_in = nn.Linear(message_bits, channels * plane * plane)
        self.message_net = nn.Sequential(*upsampling(channels, steps))
        self.embedder = nn.Sequential(
            ConvBNReLU(planes + channels, channels), ConvBNReLU(channels, channels), nn.Conv2d(channels, planes, 1),
        )
        self.decoder = nn.Sequential(
            ConvBNReLU(planes, channels),
            *downsampling(channels, steps),
            nn.Conv2d(channels, 1, 1),
        )
        self.decoder_linear = nn.Linear(plane * plane, message_bits)

    def _subband(self, x: torch.Tensor) -> torch.Tensor:
        signal = (x * self.luma_weights).sum(1, keepdim=True) if self.luma else x
        return self.dwt(signal)[:, :, self.band]

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        plane = self.message_in(message).view(x.shape[0], self.channels, self.plane, self.plane)
        band = self._subband(x)
        change = self.embedder(torch.cat([band, self.message_net(plane)], dim=1))
        bands = torch.zeros(*change.shape[:2], len(SUBBANDS), *change.shape[2:], dtype=change.dtype, device=change.device)
        bands[:, :, self.band] = change
        residual = self.dwt.inverse(bands)
        return residual.expand(-1, 3, -1, -1) if self.luma else residual

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_linear(self.decoder(self._subband(resize_to(x, self.size))).flatten(1))
