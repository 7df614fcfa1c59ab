"""Per-family training recipes: model defaults, loss weights and curriculum settings."""
from __future__ import annotations

from dataclasses import dataclass, field

from wmark.errors import WmarkError
from wmark.train.image_loss import IMAGE_LOSSES


@dataclass(frozen=True)
class Stage:
    """One training stage: which modules train and on which attacks (None: the recipe's; ``()``: no noise at all,
    which ``--attack`` does not override)."""

    name: str
    decoder_only: bool = False
    attacks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Recipe:
    """What a family contributes to the training loop.

    ``attacks`` is the easy-to-hard list the curriculum adds one by one once the image
    loss has ramped up. ``image_weight`` is the image-loss weight the curriculum starts from;
    it then steers it towards a training PSNR of the target plus ``psnr_margin`` dB (at native size). Until the
    running bit accuracy reaches ``warmup_accuracy`` the image loss weighs ``warmup_image_fraction`` of that.
    ``stages`` run in order (``--stage N`` runs one), each for ``--steps`` steps with its own curriculum.
    ``unmarked_fraction`` of each batch goes to the decoder unmarked, with target probability ½ (logit 0),
    so that its output stays near 0 without a mark. ``calibrate_strength`` False keeps the trained
    strength 1 as the card's default instead of calibrating it to the target PSNR. ``image_loss`` names the
    encoder's distortion loss (:data:`~wmark.train.image_loss.IMAGE_LOSSES`); the dual ascent still steers by
    RGB PSNR. ``critic_weight`` above 0 trains an adversary (:mod:`wmark.train.critic`) whose score of marked
    images the encoder also minimises, with that weight ramped like the image loss's.
    """

    model_kwargs: dict = field(default_factory=dict)
    lr: float = 1e-3
    message_weight: float = 1.0
    image_weight: float = 0.7
    psnr_margin: float = 1.0
    warmup_accuracy: float = 0.9
    warmup_image_fraction: float = 0.01
    ramp_fraction: float = 0.2
    attacks: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = (Stage("end-to-end"),)
    unmarked_fraction: float = 0.0
    calibrate_strength: bool = True
    image_loss: str = "mse"
    critic_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.image_loss not in IMAGE_LOSSES:
            raise ValueError(f"image_loss must be one of {', '.join(IMAGE_LOSSES)}, got {self.image_loss!r}")
        if not 0 < self.warmup_image_fraction <= 1:
            raise ValueError(f"warmup_image_fraction must be in (0, 1], got {self.warmup_image_fraction}")
        if not 0 <= self.unmarked_fraction < 1:
            raise ValueError(f"unmarked_fraction must be in [0, 1), got {self.unmarked_fraction}")


# Easy to hard, with MBRS's mix of real JPEG, simulated JPEG and identity, then an H.264 stand-in; no crop
# (position-dependent decoders need their own answer to crops).
COMPRESSION_LADDER = (
    "identity",
    "noise:std=0-0.02",
    "blur:sigma=0.1-1.0",
    "resize:scale=0.5-1.0",
    "jpeg_mix:quality=50-90",
    "h264_proxy:crf=18-30",
)

# Real, non-differentiable attacks for a decoder trained alone: Pillow's libjpeg and PyAV's x264, no proxies.
REAL_ATTACK_LADDER = (
    "identity",
    "noise:std=0-0.02",
    "blur:sigma=0.1-1.5",
    "resize:scale=0.5-1.0",
    "brightness:delta=-0.15-0.15",
    "contrast:factor=0.7-1.3",
    "jpeg:quality=40-95",
    "h264:crf=18-34",
)

RECIPES = {
    # Zhu et al. 2018: 128 px, 64 channels, Adam at 1e-3, image weight 0.7 and message weight 1, and
    # the combined noise layers (dropout, cropout, crop, Gaussian blur, JPEG-Mask, JPEG-Drop) with
    # identity; real JPEG (straight-through) comes last for the JPEG-50 target. 32 bits (the paper: 30).
    # The paper's image weight holds from the first step: HiDDeN's residual is an unbounded 1x1 convolution,
    # and at 1 % of it the residual grew as large as the image (5-9 dB) and saturated the clamp, so the run
    # never left its warm-up (checkpoints/training/hidden-32px); at the full weight it learns as fast, at 20-25 dB.
    "hidden": Recipe(
        model_kwargs={"message_bits": 32, "size": 128, "channels": 64},
        warmup_image_fraction=1.0,
        attacks=(
            "identity",
            "dropout:keep=0.3-1",
            "cropout:scale=0.3-1",
            "blur:sigma=0.1-2",
            "crop:scale=0.25-1",
            "jpeg_mask",
            "jpeg_drop",
            "jpeg:quality=50-95",
        ),
    ),
    # Jia et al. 2021: each mini-batch is real JPEG, simulated JPEG or identity (jpeg_mix). No crop:
    # the decoder's final dense layer is position-dependent, so a crop that changes the size misaligns
    # it. The diffusion variant is this model trained on MBRS's in-place Crop as well: give the whole
    # list with --attack, crop_zero:scale=... included (checkpoints/mbrs-64-diffusion's card has it).
    "mbrs": Recipe(
        model_kwargs={"message_bits": 64, "size": 64, "channels": 32, "plane": 16, "blocks": 1},
        attacks=COMPRESSION_LADDER,
    ),
    # Tavakoli et al. 2022 embed in one wavelet subband; LL on luma is the robust choice (JPEG keeps
    # luma at full resolution and quantises low frequencies least). Same attack ladder as MBRS.
    "dwtcnn": Recipe(
        model_kwargs={"message_bits": 32, "size": 64, "channels": 32, "subband": "LL", "luma": True, "plane": 8},
        attacks=COMPRESSION_LADDER,
    ),
    # Liu et al. 2019: stage 1 (FEAT) trains encoder and decoder end to end without noise; stage 2 (ADOT)
    # freezes the encoder and trains the decoder alone on real attacks. A quarter of each batch is left
    # unmarked (target logit 0): the paper observes a near-zero decoder output without a mark; training
    # for it makes that hold on real photos, and detection relies on it.
    "tsdl": Recipe(
        model_kwargs={"message_bits": 64, "size": 64, "channels": 32, "plane": 8, "encoder_blocks": 3,
                      "decoder_blocks": 2},
        attacks=REAL_ATTACK_LADDER,
        stages=(Stage("FEAT", attacks=()), Stage("ADOT", decoder_only=True)),
        unmarked_fraction=0.25,
        calibrate_strength=False,
    ),
    # Ma et al. 2022: the invertible path learns through differentiable attacks (a JPEG proxy among them);
    # batches through real JPEG (a non-differentiable codec) train the non-invertible branch instead, and
    # the noise selector learns from every batch which of the two it came from (a batch counts as heavy when
    # its attack's gradient is a straight-through estimate: plain codec specs, not compositions with them).
    "cin": Recipe(
        model_kwargs={"message_bits": 64, "size": 64, "channels": 32, "plane": 8, "couplings": 3, "growth": 12},
        attacks=(
            "identity",
            "noise:std=0-0.02",
            "blur:sigma=0.1-1.0",
            "resize:scale=0.5-1.0",
            "brightness:delta=-0.15-0.15",
            "contrast:factor=0.7-1.3",
            "jpeg_diff:quality=50-90",
            "jpeg:quality=40-90",
        ),
    ),
    # Tancik et al. 2020: message loss first, then the image, perceptual and critic weights ramp up linearly
    # while perspective warp, blur, noise, colour and JPEG join; the perceptual term is SSIM (LPIPS needs
    # weights that cannot be fetched offline) next to the paper's YUV-weighted L2. Perspective is trained a
    # little past the 5 % the acceptance check applies.
    "stegastamp": Recipe(
        model_kwargs={"message_bits": 100, "size": 64, "channels": 32, "plane": 8, "depth": 4},
        attacks=(
            "identity",
            "noise:std=0-0.02",
            "blur:sigma=0.1-1.5",
            "brightness:delta=-0.2-0.2",
            "contrast:factor=0.6-1.4",
            "saturation:factor=0.5-1.5",
            "resize:scale=0.5-1.0",
            "perspective:shift=0-0.07",
            "jpeg_mix:quality=50-90",
        ),
        image_loss="yuv_ssim",
        image_weight=0.01,  # the YUV loss weighs colour 100x, so its weight starts lower than MSE's
        critic_weight=0.5,
    ),
}


def recipe_for(family: str) -> Recipe:
    """The recipe of ``family``; a WmarkError when it has none."""
    if family not in RECIPES:
        raise WmarkError(f"no training recipe for family {family!r}; have: {', '.join(sorted(RECIPES))}")
    return RECIPES[family]


def select_stages(family: str, stage: int | None) -> list[tuple[int, Stage]]:
    """``(number, stage)`` pairs to run: every stage of the family's recipe in order, or only ``stage`` (from 1)."""
    numbered = list(enumerate(recipe_for(family).stages, start=1))
    if stage is None:
        return numbered
    if not 1 <= stage <= len(numbered):
        names = ", ".join(f"{n} ({s.name})" for n, s in numbered)
        raise WmarkError(f"{family} has no training stage {stage}; its stages: {names}")
    return [numbered[stage - 1]]
