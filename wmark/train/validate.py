"""Validation on full-resolution images through the any-resolution pipeline, or through an embedding domain."""
from __future__ import annotations

import statistics

import torch

from wmark import pipeline
from wmark.domain import Domain
from wmark.stats import psnr, ssim
from wmark.perception.calibrate import FlipCalibration, flip_ratio, strength_for_flip

VALIDATION_ATTACKS = ("identity", "jpeg:quality=50", "resize:scale=0.5", "crop:scale=0.7", "h264_proxy")
DOMAIN_VALIDATION_ATTACKS = ("identity", "jpeg:quality=50", "webp:quality=50", "resize:scale=0.5")
"""A domain's frames are read as received, without a search, so no crop here: the edits of small photos."""


@torch.no_grad()
def validate(model, images: list[torch.Tensor], strength: float, attack_specs=VALIDATION_ATTACKS, seed: int = 0,
             domain: Domain = pipeline.WHOLE_FRAME) -> dict:
    """Median PSNR/SSIM on 8-bit marked images and mean bit accuracy under each attack; through a ``domain``
    other than the whole frame, also the median FLIP ratio to a JPEG 75 re-save (whole pictures)."""
    import attacks

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    chains = {spec: attacks.create(spec) for spec in attack_specs}
    psnrs, ssims, flips, accuracy = [], [], [], {spec: [] for spec in attack_specs}
    was_training = model.training
    model.eval()
    for image in images:
        image = image.to(device)
        bits = torch.randint(0, 2, (1, domain.codeword_bits(model.message_bits)), generator=generator).to(device)
        marked = pipeline.quantize(pipeline.embed(model, image, bits * 2.0 - 1, strength, domain))
        psnrs.append(float(psnr(marked, image)))
        ssims.append(float(ssim(marked, image)))
        if not domain.is_whole_frame:
            flips.append(flip_ratio(image, marked))
        for spec, attack in chains.items():
            params = attack.sample(marked.shape, generator=generator)
            logits = pipeline.decode(model, attack(marked.cpu(), params=params).to(device), domain)
            accuracy[spec].append(float(((logits > 0).long() == bits).float().mean()))
    model.train(was_training)
    return {
        "psnr": statistics.median(psnrs),
        "ssim": statistics.median(ssims),
        **({"flip_ratio": statistics.median(flips)} if flips else {}),
        **{f"bit_acc[{spec}]": statistics.mean(v) for spec, v in accuracy.items()},
    }


def calibrate_strength(model, images: list[torch.Tensor], target_psnr: float,
                       domain: Domain = pipeline.WHOLE_FRAME) -> float:
    """The strength whose median PSNR on ``images`` is ``target_psnr`` (PSNR falls 20·log10 s)."""
    measured = validate(model, images, strength=1.0, attack_specs=(), domain=domain)["psnr"]
    return float(10 ** ((measured - target_psnr) / 20))


@torch.no_grad()
def calibrate_flip_strength(model, images: list[torch.Tensor], target_flip: float, domain: Domain) -> FlipCalibration:
    """The strength whose median FLIP ratio to a JPEG 75 re-save on ``images`` (whole pictures, 8-bit marked) is
    ``target_flip``, by the project's one rule (:func:`wmark.perception.calibrate.strength_for_flip`)."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    residuals = []
    for image in images:
        bits = torch.randint(0, 2, (1, domain.codeword_bits(model.message_bits)), generator=generator).to(device)
        residuals.append(pipeline.residual(model, image.to(device), bits * 2.0 - 1, domain))
    return strength_for_flip(images, residuals, target_flip)
