"""Two-stage separable framework: Liu, Guo, Chen, Fang, Fang, "A Novel Two-stage Separable Deep Learning
Framework for Practical Blind Watermarking", ACM MM 2019."""
from __future__ import annotations

import torch
from torch import nn

from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU, downsampling, halvings, resize_to, upsampling
from wmark.zoo import register_family


@register_family("tsdl")
class TwoStage(WatermarkModel):
    """The two-stage separable (TSDL) encoder and decoder.

    Encoder, with redundant multi-layer feature encoding: the ±1 message goes through a linear
    layer to a ``plane``×``plane`` map and transposed convolutions up to the image size; that
    message feature map is concatenated into the input of *every* one of the ``encoder_blocks``
    image blocks (not once, as HiDDeN does), and a 1×1 conv gives the residual. Decoder: conv
    blocks, strided convolutions down to ``plane``×``plane``, one channel, and a linear layer to L
    outputs (logits; near 0 when no mark is present). The split into two stages lives in the
    training recipe: stage 1 trains both halves without noise, stage 2 freezes the encoder and
    trains the decoder alone on real, non-differentiable attacks.
    """

    family = "tsdl"

    def __init__(self, message_bits: int = 64, size: int = 64, channels: int = 32, plane: int = 8,
                 encoder_blocks: int = 3, decoder_blocks: int = 2) -> None:
        super().__init__(message_bits, size)
        if encoder_blocks < 1 or decoder_blocks < 1:
            raise ValueError("encoder_blocks and decoder_blocks must be at least 1")
        steps = halvings(size, plane)
        self.plane, self.channels = plane, channels
        self.message_in = nn.Linear(message_bits, channels * plane * plane)
        self.message_net = nn.Sequential(*upsampling(channels, steps))
        self.encoder_blocks = nn.ModuleList(
            [ConvBNReLU((3 if i == 0 else channels) + channels, channels) for i in range(encoder_blocks)]
        )
        self.to_residual = nn.Conv2d(channels + 3, 3, 1)
        self.decoder = nn.Sequential(
            ConvBNReLU(3, channels),
            *[ConvBNReLU(channels, channels) for _ in range(decoder_blocks - 1)],
            *downsampling(channels, steps),
            nn.Conv2d(channels, 1, 1),
        )
        self.decoder_linear = nn.Linear(plane * plane, message_bits)

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        plane = self.message_in(message).view(x.shape[0], self.channels, self.plane, self.plane)
        message_features = self.message_net(plane)
        hidden = x
        for block in self.encoder_blocks:
            hidden = block(torch.cat([hidden, message_features], dim=1))
        return self.to_residual(torch.cat([hidden, x], dim=1))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_linear(self.decoder(resize_to(x, self.size)).flatten(1))
