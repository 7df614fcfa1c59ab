"""The recipes' image losses and the training adversary."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from wmark.train import recipes
from wmark.train.critic import Adversary
from wmark.train.image_loss import FLOOR_WEIGHT, IMAGE_LOSSES, floor_penalty, mse, yuv_ssim


def _cover():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2


@pytest.mark.parametrize("name", sorted(IMAGE_LOSSES))
def test_loss_is_zero_for_the_cover_and_grows_with_the_change(name):
    loss, cover = IMAGE_LOSSES[name], _cover()
    noise = torch.randn(cover.shape, generator=torch.Generator().manual_seed(1))
    assert float(loss(cover, cover)) == pytest.approx(0, abs=1e-6)
    assert 0 < float(loss(cover + 0.01 * noise, cover)) < float(loss(cover + 0.03 * noise, cover))


def test_yuv_loss_charges_colour_more_than_luma():
    """StegaStamp weighs U and V 100 times Y: the same RGB error costs far more as a colour shift."""
    cover = _cover()
    grey = torch.full_like(cover, 0.01)  # luma only
    colour = torch.tensor([0.01, -0.01, 0.0]).view(1, 3, 1, 1).expand_as(cover)  # mostly chroma
    assert mse(cover + grey, cover) == pytest.approx(float(mse(cover + colour, cover)), rel=0.5)
    assert yuv_ssim(cover + colour, cover) > 10 * yuv_ssim(cover + grey, cover)


def test_floor_penalty_charges_only_the_images_under_the_floor():
    cover = _cover()
    change = torch.zeros_like(cover)
    change[0] = 10 ** (-30 / 20)  # image 0 at 30 dB, image 1 untouched
    assert float(floor_penalty(cover + change, cover, 29.0)) == 0
    penalty = float(floor_penalty(cover + change, cover, 32.0))
    assert penalty == pytest.approx(FLOOR_WEIGHT * (10 ** -3 - 10 ** -3.2) / 2, rel=1e-4)


def test_unknown_image_loss_is_refused():
    with pytest.raises(ValueError, match="image_loss must be one of"):
        dataclasses.replace(recipes.RECIPES["hidden"], image_loss="lpips")


def test_critic_learns_to_score_marked_images_higher_and_stays_clipped():
    torch.manual_seed(0)
    adversary = Adversary(torch.device("cpu"), lr=1e-3)
    cover = _cover()
    marked = cover + 0.1 * torch.sign(torch.randn(cover.shape, generator=torch.Generator().manual_seed(2)))
    gap = lambda: float((adversary.critic(marked).mean() - adversary.critic(cover).mean()).detach())  # noqa: E731
    before = gap()
    for _ in range(30):
        adversary.update(marked, cover)
    assert gap() > before
    assert all(p.abs().max() <= adversary.clip for p in adversary.critic.parameters())
    marked = marked.clone().requires_grad_(True)
    adversary.encoder_loss(marked).backward()
    assert marked.grad.abs().sum() > 0, "the encoder gets a gradient from the critic"
