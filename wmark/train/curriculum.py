"""The curriculum that keeps training from collapsing.

1. ``message``: the message loss, with the image loss at a fraction of its final weight (the recipe's: 1 % by
   default, as StegaStamp's ramp starts near zero), until the running bit accuracy passes a threshold.
2. ``image``: the image-loss weight (and a critic's, where the recipe has one) ramps linearly up to its full value.
3. ``attacks``: attacks join the pool one at a time, easy to hard (as StegaStamp does).

A run started with ``--init`` from a checkpoint that reached stage 3 begins there, with the whole pool.

From stage 2 on, the full image-loss weight is a Lagrange multiplier updated by dual ascent towards
a target PSNR, or a target FLIP ratio to a JPEG 75 re-save (``target_flip``, measured in PSNR-like dB by
:func:`wmark.train.visibility.flip_error_db`): it grows while the marked images are worse than the target and
shrinks once they are better, so neither loss can win outright (no vanishing residual, no visible one). The
update is proportional-integral (Stooke, Achiam and Abbeel, "Responsive Safety in Reinforcement Learning by PID
Lagrangian Methods", ICML 2020): the log weight is the integral of the error plus ``proportional`` times its
running mean. The pure integral overshot: a fine-tune through the domain to a FLIP target, whose marks follow the
weight only over a few hundred steps, swung between 0.42 and 1.38 times the target's JPEG 75 FLIP
(checkpoints/training/mbrs-64-tiled-flip/log.csv); on a model of such a lag (first order, 150-300 steps) the
proportional term cut the mean error after the first 200 steps 2.5 to 6 times.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DUAL_STEP = 0.002  # change of log(weight) per step and per dB away from the target
MAX_PSNR_ERROR = 10.0  # dB; bounds how fast the weight can move
LOG_WEIGHT_RANGE = (-6.0, 12.0)
PROPORTIONAL = 0.2  # change of log(weight) per dB of the error's running mean
ERROR_MEMORY = 0.95  # the running mean's decay per step (about 20 steps)


@dataclass
class Curriculum:
    warmup_accuracy: float
    ramp_steps: int
    attack_specs: tuple[str, ...]
    attack_steps: int
    image_weight: float
    target_psnr: float
    warmup_image_fraction: float = 0.01
    target_flip: float | None = None
    proportional: float = PROPORTIONAL
    log_weight: float | None = None
    stage: str = "message"
    stage_start: int = 0
    running_accuracy: float = 0.5
    running_error: float = 0.0

    def __post_init__(self) -> None:
        if self.log_weight is None:
            self.log_weight = math.log(self.image_weight)

    def update(self, step: int, bit_accuracy: float, psnr: float, flip_error_db: float | None = None) -> str | None:
        """Advance with this step's bit accuracy and PSNR (or, with ``target_flip``, how far its FLIP ratio is above
        the target, in dB); return a message when the stage changes."""
        self.running_accuracy = 0.95 * self.running_accuracy + 0.05 * bit_accuracy
        if self.stage != "message":
            low, high = LOG_WEIGHT_RANGE
            error = flip_error_db if self.target_flip is not None else self.target_psnr - psnr
            error = min(MAX_PSNR_ERROR, max(-MAX_PSNR_ERROR, error))
            self.log_weight = min(high, max(low, self.log_weight + DUAL_STEP * error))
            self.running_error = ERROR_MEMORY * self.running_error + (1 - ERROR_MEMORY) * error
        if self.stage == "message" and self.running_accuracy >= self.warmup_accuracy:
            return self._enter("image", step)
        if self.stage == "image" and step - self.stage_start >= self.ramp_steps and self.attack_specs:
            return self._enter("attacks", step)
        return None

    def _enter(self, stage: str, step: int) -> str:
        self.stage, self.stage_start = stage, step
        return f"step {step}: curriculum {stage} (running bit accuracy {self.running_accuracy:.3f})"

    def continue_trained(self, image_weight: float | None) -> None:
        """Start where a trained pair left off: the attack stage with its whole pool at once, and the image-loss
        weight its dual ascent had reached (when its card recorded it), so a fine-tune keeps its robustness."""
        self.stage = "attacks"
        self.stage_start = -(len(self.attack_specs) - 1) * self.attack_steps
        if image_weight is not None:
            self.log_weight, self.running_error = math.log(image_weight), 0.0

    def ramp(self, step: int) -> float:
        """The fraction of their full weights the ramped losses (image, critic) have at ``step``."""
        start = self.warmup_image_fraction
        if self.stage == "message":
            return start
        if self.stage == "image":
            progress = (step - self.stage_start) / max(1, self.ramp_steps)
            return min(1.0, start + (1 - start) * progress)
        return 1.0

    def full_image_weight(self) -> float:
        """The image-loss weight the controller sets, before the ramp: integral and proportional terms."""
        low, high = LOG_WEIGHT_RANGE
        return math.exp(min(high, max(low, self.log_weight + self.proportional * self.running_error)))

    def current_image_weight(self, step: int) -> float:
        """The image-loss weight in force at ``step``."""
        return self.ramp(step) * self.full_image_weight()

    def active_attacks(self, step: int) -> tuple[str, ...]:
        """The attack pool at ``step``: one more spec every ``attack_steps`` in the attack stage."""
        if self.stage != "attacks":
            return ()
        count = 1 + (step - self.stage_start) // max(1, self.attack_steps)
        return self.attack_specs[: min(count, len(self.attack_specs))]

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key in ("stage", "stage_start", "running_accuracy", "log_weight"):
            setattr(self, key, state[key])
        self.running_error = state.get("running_error", 0.0)  # states saved before the proportional term
