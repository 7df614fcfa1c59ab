"""StegaStamp: Tancik, Mildenhall, Ng, "StegaStamp: Invisible Hyperlinks in Physical Photographs", CVPR 2020."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU, halvings, resize_to
from wmark.zoo import register_family

IDENTITY_WARP = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
# The regressed warp is the identity plus this fraction of the localisation net's output. At 1 or 0.1, Adam's first
# steps (lr 1e-3) swing the warp enough to scramble the decoder's input before it has learnt anything.
WARP_SCALE = 0.01


def conv_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution and ReLU; StegaStamp uses no batch norm."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class UpMerge(nn.Module):
    """One U-Net step up: 2x nearest upsampling and a conv to the skip's width, concatenation with the skip
    (and any extra maps), and a conv that merges them."""

    def __init__(self, in_channels: int, out_channels: int, extra_channels: int = 0) -> None:
        super().__init__()
        self.up = conv_relu(in_channels, out_channels)
        self.merge = conv_relu(2 * out_channels + extra_channels, out_channels)

    def forward(self, x: torch.Tensor, *skips: torch.Tensor) -> torch.Tensor:
        up = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.merge(torch.cat([*skips, up], dim=1))


@register_family("stegastamp")
class StegaStamp(WatermarkModel):
    """StegaStamp encoder/decoder.

    Encoder: the L bits go through a dense layer (linear here; the paper adds a ReLU) to a
    3×``plane``×``plane`` map that is upsampled (nearest) to the image size and concatenated with the image;
    a U-Net (widths c, c, 2c, 4c, 8c for ``depth`` 4, stride-2 convolutions down, nearest upsampling and skip
    concatenations up) outputs the residual. The paper's 400 px model upsamples a 50×50 map 8x; at 64 px a
    plane of 8 keeps that factor.
    Decoder: a spatial transformer (a small conv net regresses an affine warp that resamples the input; it
    starts as the identity), then the paper's seven convolutions (c, c, 2c, 2c, 2c, 4c, 4c) with batch norm
    added, the first at full resolution and then stride 2 until the side is the plane's, a 1×1 conv to four
    maps and a dense layer to L logits. The paper's decoder halves the side five times and reads the bits
    through a hidden dense layer of 512; scaled down to 64 px, that version learnt nothing in 200 steps where
    this one reads a fixed pattern, as MBRS's decoder does. Like every decoder with a dense layer, it first
    resizes any input to the native size.
    """

    family = "stegastamp"

    def __init__(self, message_bits: int = 100, size: int = 64, channels: int = 32, plane: int = 8,
                 depth: int = 4) -> None:
        super().__init__(message_bits, size)
        if size % 8 or size % 2**depth or halvings(size, plane) > 3:
            raise ValueError(f"size must be a multiple of 8 and of 2**depth, and plane times 1, 2, 4 or 8; got {size}")
        self.plane = plane
        widths = [channels] + [channels * 2 ** max(0, i - 1) for i in range(1, depth + 1)]
        self.message_in = nn.Linear(message_bits, 3 * plane * plane)
        self.down = nn.ModuleList(
            [conv_relu(6, widths[0])] + [conv_relu(widths[i - 1], widths[i], 2) for i in range(1, depth + 1)]
        )
        self.up = nn.ModuleList(
            UpMerge(widths[i], widths[i - 1], extra_channels=6 if i == 1 else 0) for i in range(depth, 0, -1)
        )
        self.to_residual = nn.Sequential(conv_relu(widths[0], widths[0]), nn.Conv2d(widths[0], 3, 1))
        c = channels
        self.decoder_localize = nn.Sequential(
            conv_relu(3, c, 2), conv_relu(c, 2 * c, 2), conv_relu(2 * c, 4 * c, 2), nn.Flatten(),
            nn.Linear(4 * c * (size // 8) ** 2, 4 * c), nn.ReLU(inplace=True), nn.Linear(4 * c, 6),
        )
        # The paper's seven convolutions, plus batch norm, the first at full resolution and then as many of its
        # stride-2 ones as bring the side down to the plane; a 1x1 conv to a few maps and a dense layer read the bits.
        widths, strides = [c, c, 2 * c, 2 * c, 2 * c, 4 * c, 4 * c], [1, 2, 1, 2, 1, 2, 1]
        halvings_left = halvings(size, plane)
        reads, in_ch = [], 3
        for width, stride in zip(widths, strides):
            reads.append(ConvBNReLU(in_ch, width, 2 if stride == 2 and halvings_left > 0 else 1))
            halvings_left -= stride == 2
            in_ch = width
        self.decoder_read = nn.Sequential(
            *reads, nn.Conv2d(in_ch, 4, 1), nn.Flatten(), nn.Linear(4 * plane**2, message_bits),
        )
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation for the ReLU layers (without normalisation, PyTorch's default shrinks the signal
        about threefold per layer); the last layers keep PyTorch's default, and the spatial transformer starts
        as the identity. A zero residual at the start, tried too, kept the message from being learnt."""
        last_layers = {self.to_residual[-1], self.decoder_localize[-1], self.decoder_read[-1]}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in last_layers:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.zeros_(self.decoder_localize[-1].weight)
        nn.init.zeros_(self.decoder_localize[-1].bias)

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        planes = self.message_in(message).view(x.shape[0], 3, self.plane, self.plane)
        inputs = torch.cat([x - 0.5, F.interpolate(planes, size=x.shape[-2:], mode="nearest")], dim=1)
        skips = []
        h = inputs
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        h = skips.pop()
        for step in self.up:
            skip = skips.pop()
            h = step(h, skip, inputs) if not skips else step(h, skip)
        return self.to_residual(h)

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial transformer: ``x`` resampled through the affine warp the localisation net regresses."""
        theta = IDENTITY_WARP.to(x) + WARP_SCALE * self.decoder_localize(x).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_read(self.warp(resize_to(x, self.size) - 0.5))
