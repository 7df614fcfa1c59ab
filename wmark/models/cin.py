"""CIN: Ma, Guo, Wang, Wang, Zhao, "Towards Blind Watermarking: Combining Invertible and Non-invertible
Mechanisms", ACM MM 2022."""
from __future__ import annotations

import torch
from torch import nn

from wmark.models.base import WatermarkModel
from wmark.models.blocks import ConvBNReLU, SEResidualBlock, downsampling, halvings, resize_to, upsampling
from wmark.models.dwt import DWT2d
from wmark.zoo import register_family


class DenseSubnet(nn.Module):
    """A densely connected conv stack (each layer sees every earlier output): the coupling functions."""

    def __init__(self, in_channels: int, out_channels: int, growth: int, layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(in_channels + i * growth, growth, 3, padding=1) for i in range(layers))
        self.out = nn.Conv2d(in_channels + layers * growth, out_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        nn.init.normal_(self.out.weight, std=1e-3)  # each coupling starts near the identity
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(self.act(layer(torch.cat(features, dim=1))))
        return self.out(torch.cat(features, dim=1))


class AffineCoupling(nn.Module):
    """One invertible block over an image half and a message half:
    ``y1 = x1 + φ(x2)``, ``y2 = x2·exp(α·tanh ρ(y1)) + η(y1)``; :meth:`inverse` undoes it exactly."""

    def __init__(self, channels: int, growth: int, alpha: float = 2.0) -> None:
        super().__init__()
        self.phi = DenseSubnet(channels, channels, growth)
        self.rho = DenseSubnet(channels, channels, growth)
        self.eta = DenseSubnet(channels, channels, growth)
        self.alpha = alpha

    def _scale(self, y1):
        return self.alpha * torch.tanh(self.rho(y1))

    def forward(self, x1, x2):
        y1 = x1 + self.phi(x2)
        return y1, x2 * torch.exp(self._scale(y1)) + self.eta(y1)

    def inverse(self, y1, y2):
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._scale(y1))
        return y1 - self.phi(x2), x2


@register_family("cin")
class CIN(WatermarkModel):
    """CIN's invertible embedding with a non-invertible decoder branch and a per-image noise selector.

    Inside the model images are in [-1, 1]. The image goes through an invertible Haar downsampling
    to 12 channels at half size; the ±1 message goes through a linear layer to a ``plane``×``plane``
    map and transposed convolutions to a message plane of the same shape. ``couplings`` affine
    coupling blocks with dense sub-networks mix the two; the image half, Haar-inverted, is the
    marked image. Decoding has two branches:

    * invertible: ``decoder_split`` predicts the leftover half (the second output of the forward
      couplings, which embedding discards; learned end to end, never supervised directly) from the
      (attacked) image half, the *same* coupling blocks run in reverse, and ``decoder_message``
      reads the bits off the recovered message plane;
    * non-invertible (``decoder_robust``): SE conv blocks down to the plane and a linear layer, trained
      on every batch, and alone on those with heavy, non-differentiable attacks (real JPEG);

    and ``decoder_selector`` (the noise-selection module) picks the branch for each image on its own,
    trained to pick the one that reads more bits (:meth:`decode_for_training`; in eval mode; in train mode
    the branches' batch norms share batch statistics).
    """

    family = "cin"

    def __init__(self, message_bits: int = 64, size: int = 64, channels: int = 32, plane: int = 8,
                 couplings: int = 3, growth: int = 12) -> None:
        super().__init__(message_bits, size)
        if couplings < 1:
            raise ValueError("couplings must be at least 1")
        if size % 2:
            raise ValueError("size must be even (the Haar transform halves it)")
        steps = halvings(size // 2, plane, "size / 2")
        bands = 12  # 3 colour channels × 4 Haar subbands
        self.plane, self.channels = plane, channels
        self.haar = DWT2d("haar")
        self.message_in = nn.Linear(message_bits, channels * plane * plane)
        self.message_net = nn.Sequential(*upsampling(channels, steps), nn.Conv2d(channels, bands, 3, padding=1))
        self.couplings = nn.ModuleList(AffineCoupling(bands, growth) for _ in range(couplings))
        self.decoder_split = DenseSubnet(bands, bands, growth)
        self.decoder_message = nn.Sequential(
            ConvBNReLU(bands, channels), *downsampling(channels, steps), nn.Conv2d(channels, 1, 1), nn.Flatten(),
            nn.Linear(plane * plane, message_bits),
        )
        self.decoder_robust = nn.Sequential(
            ConvBNReLU(3, channels), SEResidualBlock(channels), *downsampling(channels, steps + 1),
            nn.Conv2d(channels, 1, 1), nn.Flatten(), nn.Linear(plane * plane, message_bits),
        )
        self.decoder_selector = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1),
        )

    def to_bands(self, image: torch.Tensor) -> torch.Tensor:
        """[-1, 1] image (B, 3, H, W) → its Haar subbands (B, 12, H/2, W/2)."""
        bands = self.haar(image)
        return bands.flatten(1, 2)

    def from_bands(self, bands: torch.Tensor) -> torch.Tensor:
        b, _, h, w = bands.shape
        return self.haar.inverse(bands.view(b, 3, 4, h, w))

    def couple(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The invertible network, forwards: (image half, message half) → (marked half, leftover half)."""
        for block in self.couplings:
            x1, x2 = block(x1, x2)
        return x1, x2

    def uncouple(self, y1: torch.Tensor, y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same blocks in reverse order, each inverted: undoes :meth:`couple`."""
        for block in reversed(self.couplings):
            y1, y2 = block.inverse(y1, y2)
        return y1, y2

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        cover = x * 2 - 1
        plane = self.message_in(message).view(x.shape[0], self.channels, self.plane, self.plane)
        marked, _ = self.couple(self.to_bands(cover), self.message_net(plane))
        return (self.from_bands(marked) - cover) / 2

    def _inside(self, x: torch.Tensor) -> torch.Tensor:
        """A [0, 1] image at any size → the model's [-1, 1] native-size input."""
        return resize_to(x, self.size) * 2 - 1

    def _invertible(self, image: torch.Tensor) -> torch.Tensor:
        marked = self.to_bands(image)
        _, message_plane = self.uncouple(marked, self.decoder_split(marked))
        return self.decoder_message(message_plane)

    def decode_invertible(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the invertible branch: predicted leftover half, coupling blocks in reverse."""
        return self._invertible(self._inside(x))

    def decode_robust(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the non-invertible branch."""
        return self.decoder_robust(self._inside(x))

    def heavy_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The noise selector's (B,) logit that ``x`` went through a heavy attack."""
        return self.decoder_selector(self._inside(x)).squeeze(1)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        image = self._inside(x)
        heavy = self.decoder_selector(image).squeeze(1) > 0
        if not heavy.any():  # run a branch only when some image needs it
            return self._invertible(image)
        if heavy.all():
            return self.decoder_robust(image)
        return torch.where(heavy[:, None], self.decoder_robust(image), self._invertible(image))

    def decode_for_training(self, x: torch.Tensor, heavy: bool,
                            targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The branch that owns this batch (robust after a real codec, invertible otherwise, as in the paper),
        and an extra loss: the robust branch's message loss on the other batches too, and the noise selector's
        loss for picking, per image, the branch that reads more of its bits (the invertible one on a tie).

        The paper labels the selector by the kind of attack. Here that label cannot be learnt: at the native
        64 px a real JPEG 50 of a photo moves pixels by well under a level, and the invertible branch reads it
        anyway; so the selector learns where the robust branch reads better instead."""
        image = self._inside(x)
        robust, invertible = self.decoder_robust(image), self._invertible(image)
        selector = self.decoder_selector(image).squeeze(1)
        better = (_errors(robust.detach(), targets) < _errors(invertible.detach(), targets)).to(selector.dtype)
        extra = nn.functional.binary_cross_entropy_with_logits(selector, better)
        if not heavy:
            extra = extra + nn.functional.binary_cross_entropy_with_logits(robust.float(), targets)
        return (robust if heavy else invertible), extra

    def freeze_encoder(self) -> None:
        """Decoder-only training trains the robust branch and the selector: the invertible branch's decoder
        (``decoder_split``, ``decoder_message``) belongs to the invertible pair and is fixed with it."""
        super().freeze_encoder()
        for module in (self.decoder_split, self.decoder_message):
            module.eval()
            module.requires_grad_(False)


def _errors(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row, how many of ``logits``' bits fall on the wrong side of ``targets`` (CIN's recipe marks every row)."""
    return ((logits > 0) != (targets > 0.5)).sum(1)
