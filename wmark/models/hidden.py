"""HiDDeN: Zhu, Kaplan, Johnson, Fei-Fei, "HiDDeN: Hiding Data With Deep Networks", ECCV 2018."""
from __future__ import annotations

import torch
from torch import nn

from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU
from wmark.zoo import register_family


@register_family("hidden")
class HiDDeN(WatermarkModel):
    """HiDDeN encoder/decoder.

    Encoder: conv-BN-ReLU blocks on the image; the message is replicated over H×W and
    concatenated with those features and the image; one more block and a 1×1 conv give the
    residual. Decoder: conv-BN-ReLU blocks, a conv to L channels, global average pooling
    and a linear layer. ``decoder_downsamples`` turns that many decoder blocks into
    stride-2 blocks (0 is the paper's decoder; more is cheaper at the same receptive field).

    Unlike the other families, whose message is a learned spatial plane read back by a position-dependent layer,
    this pair is translation-invariant: a bit can only be carried by image-wide texture statistics that encoder
    and decoder have to discover together, so it learns slowly. The reference implementation
    (ando-khachatryan/HiDDeN, no noise, 30 bits, 128 px) is at a bitwise error of 0.32 after about 8,000 steps
    and 0.01 after about 100,000; a tiny model learns 2 bits in a few hundred steps
    (tests/test_hidden_training.py) but 30 bits only reach about 0.75 in 2,000.
    """

    family = "hidden"

    def __init__(
        self,
        message_bits: int = 64,
        size: int = 128,
        channels: int = 64,
        encoder_blocks: int = 4,
        decoder_blocks: int = 7,
        decoder_downsamples: int = 0,
    ) -> None:
        super().__init__(message_bits, size)
        if decoder_downsamples > decoder_blocks - 1:
            raise ValueError("decoder_downsamples must be smaller than decoder_blocks")
        self.features = nn.Sequential(
            ConvBNReLU(3, channels), *[ConvBNReLU(channels, channels) for _ in range(encoder_blocks - 1)]
        )
        self.after_concat = ConvBNReLU(channels + message_bits + 3, channels)
        self.to_residual = nn.Conv2d(channels, 3, 1)
        strides = [2 if 1 <= i <= decoder_downsamples else 1 for i in range(decoder_blocks - 1)]
        layers, in_ch = [], 3
        for stride in strides:
            layers.append(ConvBNReLU(in_ch, channels, stride))
            in_ch = channels
        self.decoder = nn.Sequential(*layers, ConvBNReLU(channels, message_bits), nn.AdaptiveAvgPool2d(1))
        self.decoder_linear = nn.Linear(message_bits, message_bits)

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        expanded = message[:, :, None, None].expand(-1, -1, x.shape[-2], x.shape[-1])
        hidden = self.after_concat(torch.cat([self.features(x), expanded, x], dim=1))
        return self.to_residual(hidden)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_linear(self.decoder(x).flatten(1))
