"""An adversary for training: a critic that tells marked from clean covers, and the loss it gives the encoder."""
from __future__ import annotations

import torch
from torch import nn


class Critic(nn.Module):
    """StegaStamp's WGAN critic (Tancik et al. 2020): four stride-2 conv-ReLU layers (8, 16, 32, 64 channels),
    a conv to one channel, and the mean over positions: one score per image, any size."""

    def __init__(self) -> None:
        super().__init__()
        layers, in_ch = [], 3
        for out_ch in (8, 16, 32, 64):
            layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            in_ch = out_ch
        self.net = nn.Sequential(*layers, nn.Conv2d(in_ch, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x - 0.5).mean((1, 2, 3))


class Adversary:
    """A critic trained as a Wasserstein GAN with weight clipping (Arjovsky et al. 2017), as StegaStamp does
    (RMSprop, weights clipped to ±``clip``). :meth:`encoder_loss` is what the encoder minimises (the critic's
    score of marked images: low means "looks clean"); :meth:`update` takes one critic step."""

    def __init__(self, device: torch.device, lr: float = 1e-4, clip: float = 0.01) -> None:
        self.critic = Critic().to(device)
        self.optimizer = torch.optim.RMSprop(self.critic.parameters(), lr=lr)
        self.clip = clip
        self._clip()

    def encoder_loss(self, marked: torch.Tensor) -> torch.Tensor:
        return self.critic(marked).mean()

    def update(self, marked: torch.Tensor, cover: torch.Tensor) -> float:
        """One critic step: marked images should score high and clean ones low; returns the critic's loss."""
        loss = self.critic(cover).mean() - self.critic(marked.detach()).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._clip()
        return float(loss.detach())

    @torch.no_grad()
    def _clip(self) -> None:
        for parameter in self.critic.parameters():
            parameter.clamp_(-self.clip, self.clip)

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
