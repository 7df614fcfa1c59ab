"""The curriculum that keeps training from collapsing.

1. ``message``: the message loss, with the image loss at 1 % of its final weight (enough to keep the
   residual inside the pixel range), until the running bit accuracy passes a threshold.
2. ``image``: the image-loss weight ramps linearly from 0 to its final value.
3. ``attacks``: attacks join the pool one at a time, easy to hard (as StegaStamp does).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

MESSAGE_STAGE_IMAGE_FRACTION = 0.01


@dataclass
class Curriculum:
    warmup_accuracy: float
    ramp_steps: int
    attack_specs: tuple[str, ...]
    attack_steps: int
    stage: str = "message"
    stage_start: int = 0
    running_accuracy: float = 0.5
    log: list = field(default_factory=list)

    def update(self, step: int, bit_accuracy: float) -> str | None:
        """Advance with this step's bit accuracy; return a message when the stage changes."""
        self.running_accuracy = 0.95 * self.running_accuracy + 0.05 * bit_accuracy
        if self.stage == "message" and self.running_accuracy >= self.warmup_accuracy:
            return self._enter("image", step)
        if self.stage == "image" and step - self.stage_start >= self.ramp_steps and self.attack_specs:
            return self._enter("attacks", step)
        return None

    def _enter(self, stage: str, step: int) -> str:
        self.stage, self.stage_start = stage, step
        note = f"step {step}: stage {stage} (running bit accuracy {self.running_accuracy:.3f})"
        self.log.append(note)
        return note

    def image_fraction(self, step: int) -> float:
        """Share of the final image-loss weight in force at ``step``."""
        if self.stage == "message":
            return MESSAGE_STAGE_IMAGE_FRACTION
        if self.stage == "image":
            ramp = (step - self.stage_start) / max(1, self.ramp_steps)
            return min(1.0, MESSAGE_STAGE_IMAGE_FRACTION + (1 - MESSAGE_STAGE_IMAGE_FRACTION) * ramp)
        return 1.0

    def active_attacks(self, step: int) -> tuple[str, ...]:
        """The attack pool at ``step``: one more spec every ``attack_steps`` in the attack stage."""
        if self.stage != "attacks":
            return ()
        count = 1 + (step - self.stage_start) // max(1, self.attack_steps)
        return self.attack_specs[: min(count, len(self.attack_specs))]

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key in ("stage", "stage_start", "running_accuracy", "log"):
            setattr(self, key, state[key])
