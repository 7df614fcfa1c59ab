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


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation channel gating (Hu et al., CVPR 2018)."""

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, max(1, channels // reduction), 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(max(1, channels // reduction), channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.gate(x)


class SEResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with SE gating and an identity shortcut (MBRS's SENet block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNReLU(channels, channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            SqueezeExcite(channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(x + self.body(x))
