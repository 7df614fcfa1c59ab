"""Building blocks shared by the model families."""
from __future__ import annotations

import math

import torch
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


def halvings(size: int, plane: int, what: str = "size") -> int:
    """The k with ``size == plane * 2**k``: how many 2x steps join a plane×plane message map to ``size``."""
    steps = int(math.log2(max(1, size // plane)))
    if plane * 2**steps != size:
        raise ValueError(f"{what} must be plane times a power of two")
    return steps


def upsampling(channels: int, steps: int) -> list[nn.Module]:
    """``steps`` transposed-conv/BN/ReLU blocks, each doubling the side (the message processors' upsampler)."""
    return [nn.Sequential(nn.ConvTranspose2d(channels, channels, 2, stride=2), nn.BatchNorm2d(channels), nn.ReLU(True))
            for _ in range(steps)]


def downsampling(channels: int, steps: int) -> list[nn.Module]:
    """``steps`` stride-2 conv-BN-ReLU blocks, each halving the side (the decoders' way down to the plane)."""
    return [ConvBNReLU(channels, channels, stride=2) for _ in range(steps)]


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` resized (antialiased bilinear) to size×size, for decoders whose last layer is position-dependent."""
    if x.shape[-2:] == (size, size):
        return x
    return nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
