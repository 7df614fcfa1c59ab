"""Building blocks shared by the model families."""
from __future__ import annotations

from torch import nn


class ConvBNReLU(nn.Sequential):
    """3x3 convolution, batch norm and ReLU: the unit of HiDDeN's encoder and decoder."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
