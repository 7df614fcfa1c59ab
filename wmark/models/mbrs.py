"""MBRS: Jia, Fang, Zhang, "MBRS: Enhancing Robustness of DNN-based Watermarking by Mini-Batch of
Real and Simulated JPEG Compression", ACM MM 2021."""
from __future__ import annotations

import torch
from torch import nn

from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU, SEResidualBlock, downsampling, halvings, resize_to, upsampling
from wmark.zoo import register_family


@register_family("mbrs")
class MBRS(WatermarkModel):
    """MBRS encoder/decoder.

    The message processor maps the L bits through a linear layer to a ``plane``×``plane`` map,
    upsamples it with transposed convolutions to the image size and refines it with SE blocks;
    the encoder concatenates it with SE image features and the image, and a 1×1 conv gives the
    residual. The decoder runs SE blocks, strided convolutions down to ``plane``×``plane``, one
    channel, and a linear layer back to L logits. Because that last layer is position-dependent,
    the decoder first resizes any input to the native size.

    The two linear layers are the paper's diffusion block: each bit is spread over the whole
    ``plane``×``plane`` map (256 values at plane 16, the paper's diffusion length) rather than
    reshaped into √L×√L, so a part of the frame can carry every bit. Trained with ``crop_zero``
    (MBRS's Crop: a box kept in place, the rest black), this is the diffusion variant.
    """

    family = "mbrs"

    def __init__(self, message_bits: int = 64, size: int = 64, channels: int = 32, plane: int = 16,
                 blocks: int = 2) -> None:
        super().__init__(message_bits, size)
        steps = halvings(size, plane)
        self.plane = plane
        self.message_in = nn.Linear(message_bits, plane * plane)
        self.message_net = nn.Sequential(
            ConvBNReLU(1, channels),
            *upsampling(channels, steps),
            *[SEResidualBlock(channels) for _ in range(blocks)],
        )
        self.image_net = nn.Sequential(ConvBNReLU(3, channels), *[SEResidualBlock(channels) for _ in range(blocks)])
        self.fuse = ConvBNReLU(2 * channels + 3, channels)
        self.to_residual = nn.Conv2d(channels, 3, 1)
        self.decoder = nn.Sequential(
            ConvBNReLU(3, channels),
            *[SEResidualBlock(channels) for _ in range(blocks)],
            *downsampling(channels, steps),
            nn.Conv2d(channels, 1, 1),
        )
        self.decoder_linear = nn.Linear(plane * plane, message_bits)

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.image_net(x), self._message_features(message), x], dim=1)
        return self.to_residual(self.fuse(features))

    def residuals_on(self, x: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
        """The image branch, and its share of the fusing convolution (linear, so it splits by input channel),
        run once for all messages: six patterns cost about a third less."""
        conv, norm, relu = self.fuse
        channels = self.image_net[0][0].out_channels
        weight = conv.weight
        image_part = conv._conv_forward(torch.cat([self.image_net(x), x], 1),
                                        torch.cat([weight[:, :channels], weight[:, 2 * channels:]], 1), conv.bias)
        message_part = conv._conv_forward(self._message_features(messages), weight[:, channels:2 * channels], None)
        return self.to_residual(relu(norm(message_part + image_part)))

    def _message_features(self, message: torch.Tensor) -> torch.Tensor:
        return self.message_net(self.message_in(message).view(len(message), 1, self.plane, self.plane))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder_linear(self.decoder(resize_to(x, self.size)).flatten(1))
