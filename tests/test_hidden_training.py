"""HiDDeN learns through the real training loop (issue 40 §1).

HiDDeN is the one translation-invariant family: the message enters as an L×H×W volume of constant planes and the
decoder ends in global average pooling, so a bit can only be read from image-wide texture statistics that encoder
and decoder must discover together. The paper's design learns slowly: the reference implementation
(ando-khachatryan/HiDDeN, experiments/no-noise-*/train.csv: 30 bits, 128 px, batch 12, no noise) is still at a
bitwise error of 0.32 after 10 epochs (about 8,300 steps) and reaches 0.01 only after some 100,000 steps. A test
bounded to a minute therefore cannot ask 30 bits of it; it asks a few bits, which a wiring fault (message not
reaching the residual, a decoder that ignores its input, a loss or target mix-up, a loop that decodes the wrong
image) would keep at chance however long it trained.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

import wmark
from wmark import pipeline
from wmark.io.image import read_image
from wmark.train import recipes
from wmark.train.loop import TrainConfig, Trainer

SAMPLE = Path(wmark.__file__).parent / "samples" / "storm.jpg"
MODEL = {"channels": 24, "encoder_blocks": 3, "decoder_blocks": 4, "decoder_downsamples": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_crops(folder: Path) -> Path:
    """Four 256 px crops of the bundled sample photo into ``folder`` (the loop draws random 32 px views of them)."""
    photo = read_image(SAMPLE).rgb
    for i, (top, left) in enumerate([(0, 0), (300, 400), (500, 900), (100, 700)]):
        crop = photo[0, :, top : top + 256, left : left + 256]
        Image.fromarray((crop.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    return write_crops(tmp_path_factory.mktemp("crops"))


def _identity_read(model, covers: torch.Tensor, generator: torch.Generator) -> tuple[float, float]:
    """(bit accuracy, PSNR in dB) in eval mode on ``covers`` marked at strength 1, saved as 8 bits and decoded
    unattacked."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        bits = torch.randint(0, 2, (len(covers), model.message_bits), generator=generator)
        marked = pipeline.quantize(covers + model.residual(covers, bits * 2.0 - 1))
        accuracy = float(((model.decode(marked) > 0).long() == bits).float().mean())
        psnr = float(-10 * torch.log10((marked - covers).square().mean()))
    model.train(was_training)
    return accuracy, psnr


def _steps_to_learn(crops, tmp_path, monkeypatch, bits: int, max_steps: int,
                    seed: int = 0) -> tuple[int | None, float]:
    """Train a tiny HiDDeN with identity noise in the curriculum's message stage (the paper's image weight, as
    the recipe's warm-up has it); (the first multiple of 100 steps at which it reads ≥ 0.99, else None; the PSNR
    of its marks then)."""
    recipe = dataclasses.replace(recipes.RECIPES["hidden"], warmup_accuracy=1.01)  # never leaves the message stage
    monkeypatch.setitem(recipes.RECIPES, "hidden", recipe)
    config = TrainConfig(family="hidden", data=str(crops), out=str(tmp_path / "run"), steps=max_steps, batch=16,
                         size=32, bits=bits, attacks=["identity"], log_every=max_steps, model_kwargs=MODEL, seed=seed)
    trainer = Trainer(config)
    trainer.begin(*trainer.todo[0])
    generator = torch.Generator().manual_seed(seed + 1)
    covers = trainer.cache.sample(32, 32, generator)
    psnr = 0.0
    try:
        for step in range(1, max_steps + 1):
            trainer.step()
            if step % 100 == 0:
                accuracy, psnr = _identity_read(trainer.model, covers, generator)
                if accuracy >= 0.99:
                    return step, psnr
    finally:
        trainer.codecs.close()
    return None, psnr


def test_hidden_learns_identity_noise(crops, tmp_path, monkeypatch):
    rng = torch.random.get_rng_state()
    steps, psnr = _steps_to_learn(crops, tmp_path, monkeypatch, bits=2, max_steps=1000)
    assert steps is not None, "a tiny HiDDeN did not learn 2 bits through the identity in 1,000 steps"
    assert torch.equal(torch.random.get_rng_state(), rng), "training must not draw from the global RNG"
    # Issue 40: at 1 % of the paper's image weight the warm-up let the residual grow to 5-9 dB, as large as the
    # image; clamped to the pixel range it gave the encoder no gradient, and the run never left its warm-up.
    assert psnr >= 18, f"HiDDeN's warm-up let its marks fall to {psnr:.1f} dB"
