"""Validation on full-resolution images through the any-resolution pipeline."""
from __future__ import annotations

import statistics

import torch

from wmark import pipeline
from wmark.stats import psnr, ssim

VALIDATION_ATTACKS = ("identity", "jpeg:quality=50", "resize:scale=0.5", "crop:scale=0.7", "h264_proxy")


@torch.no_grad()
def validate(model, images: list[torch.Tensor], strength: float, attack_specs=VALIDATION_ATTACKS, seed: int = 0) -> dict:
    """Median PSNR/SSIM on 8-bit marked images and mean bit accuracy under each attack."""
    import attacks

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    chains = {spec: attacks.create(spec) for spec in attack_specs}
    psnrs, ssims, accuracy = [], [], {spec: [] for spec in attack_specs}
    was_training = model.training
    model.eval()
    for image in images:
        image = image.to(device)
        bits = torch.randint(0, 2, (1, model.message_bits), generator=generator).to(device)
        marked = pipeline.quantize(pipeline.embed(model, image, bits * 2.0 - 1, strength))
        psnrs.append(float(psnr(marked, image)))
        ssims.append(float(ssim(marked, image)))
        for spec, attack in chains.items():
            params = attack.sample(marked.shape, generator=generator)
            logits = pipeline.decode(model, attack(marked.cpu(), params=params).to(device))
            accuracy[spec].append(float(((logits > 0).long() == bits).float().mean()))
    model.train(was_training)
    return {
        "psnr": statistics.median(psnrs),
        "ssim": statistics.median(ssims),
        **{f"bit_acc[{spec}]": statistics.mean(v) for spec, v in accuracy.items()},
    }


def calibrate_strength(model, images: list[torch.Tensor], target_psnr: float) -> float:
    """The strength whose median PSNR on ``images`` is ``target_psnr`` (PSNR falls 20·log10 s)."""
    measured = validate(model, images, strength=1.0, attack_specs=())["psnr"]
    return float(10 ** ((measured - target_psnr) / 20))
