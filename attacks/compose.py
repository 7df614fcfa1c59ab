"""Combinators: a chain of attacks (`Compose`) and a random pick of one (`OneOf`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import Attack, AttackError, worst_grad


def _check_children(owner: str, attacks) -> list[Attack]:
    attacks = list(attacks)
    if not attacks or not all(isinstance(a, Attack) for a in attacks):
        raise AttackError(f"{owner} needs a non-empty list of Attack instances")
    return attacks


class Compose(Attack):
    """Apply attacks one after another (spec syntax: `jpeg:quality=50+resize:scale=0.5`).

    Params are {"steps": [params of each attack]}; each step is sampled for the shape
    the previous steps produce. A cover passed in goes to the steps that need one.
    """

    frames_native = True

    def __init__(self, attacks: Sequence[Attack]):
        super().__init__()
        self.attacks = nn.ModuleList(_check_children("Compose", attacks))
        self.grad = worst_grad(a.grad for a in self.attacks)
        self.changes_size = any(a.changes_size for a in self.attacks)
        self.needs_cover = any(a.needs_cover for a in self.attacks)

    def draw(self, shape, generator):
        steps = []
        for attack in self.attacks:
            params = attack.sample(shape, generator)
            steps.append(params)
            shape = attack.output_shape(shape, params)
        return {"steps": steps}

    def output_shape(self, shape, params):
        for attack, p in zip(self.attacks, params["steps"]):
            shape = attack.output_shape(shape, p)
        return tuple(shape)

    def transform(self, x, params, cover):
        for attack, p in zip(self.attacks, params["steps"]):
            x = attack(x, p, cover=cover if attack.needs_cover else None)
        return x


class OneOf(Attack):
    """Pick one attack per call (per mini-batch), with optional weights; for training.

    The pick is drawn in `sample`: params are {"index": i, "params": params of attack i}.
    """

    frames_native = True

    def __init__(self, attacks: Sequence[Attack], weights: Sequence[float] | None = None, **options):
        super().__init__(**options)
        self.attacks = nn.ModuleList(_check_children("OneOf", attacks))
        if weights is None:
            weights = [1.0] * len(self.attacks)
        weights = [float(w) for w in weights]
        if len(weights) != len(self.attacks) or min(weights) < 0 or sum(weights) <= 0:
            raise AttackError("OneOf: weights must be one non-negative number per attack, not all zero")
        self.weights = weights
        self.grad = worst_grad(a.grad for a in self.attacks)
        self.changes_size = any(a.changes_size for a in self.attacks)
        self.needs_cover = any(a.needs_cover for a in self.attacks)

    def draw(self, shape, generator):
        w = torch.tensor(self.weights, dtype=torch.float64, device=generator.device)
        index = int(torch.multinomial(w, 1, generator=generator))
        return {"index": index, "params": self.attacks[index].sample(shape, generator)}

    def output_shape(self, shape, params):
        return self.attacks[params["index"]].output_shape(shape, params["params"])

    def transform(self, x, params, cover):
        attack = self.attacks[params["index"]]
        return attack(x, params["params"], cover=cover if attack.needs_cover else None)
