"""The interface every watermarking family implements."""
from __future__ import annotations

import torch
from torch import nn


class WatermarkModel(nn.Module):
    """An encoder that predicts a residual and a decoder that reads the message back.

    Images are float (B, 3, H, W) in [0, 1] at the model's native ``size``. Messages
    enter as ±1 (B, L); the decoder returns logits (B, L), positive meaning bit 1.
    The marked image is ``x + strength * residual(x, message)``. Decoder submodules are named
    ``decoder*``; everything else belongs to the encoder.
    """

    family: str = ""

    def __init__(self, message_bits: int, size: int) -> None:
        super().__init__()
        self.message_bits = message_bits
        self.size = size

    def residual(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def residuals_on(self, x: torch.Tensor, messages: torch.Tensor) -> torch.Tensor:
        """Residuals (N, 3, size, size) of one image ``x`` (1, 3, size, size) for each of N ``messages``."""
        return self.residual(x.expand(len(messages), -1, -1, -1), messages)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_for_training(self, x: torch.Tensor, heavy: bool,
                            targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits the message loss reads while training, and any extra loss of the family's own
        (None: none). ``heavy`` says the batch went through a real, non-differentiable codec; ``targets``
        (B, L) are the bits the message loss expects (0.5 on unmarked rows)."""
        return self.decode(x), None

    def forward(self, x: torch.Tensor, message: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Marked image at native size (not clamped, so gradients pass everywhere)."""
        return x + strength * self.residual(x, message)

    def freeze_encoder(self) -> None:
        """Train the decoder alone (two-stage training): encoder weights fixed, its batch norms in eval mode."""
        for name, module in self.named_children():
            if not name.startswith("decoder"):
                module.eval()
                module.requires_grad_(False)
