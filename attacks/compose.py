"""Combinators: a chain of attacks (`Compose`), a random pick of one (`OneOf`) and an
attack applied with probability p (`Maybe`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import Attack, AttackError, Identity, check_option, param, worst_grad

PER = ("batch", "sample")
P_SPEC = param(1.0, "probability of applying the attack", lo=0, hi=1, range=False)


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
    """Pick one attack at random, with optional weights; for training.

    `per="batch"` (the default) picks one attack for the whole call (mini-batch):
    params are {"index": i, "params": params of attack i}. `per="sample"` picks per
    sample (per clip): params are {"index": (B,) picks, "params": [params of attack
    i for the samples that picked it, or None]}; it needs attacks that keep the
    size, so the outputs stack. Spec syntax: `jpeg|blur` or a list of specs.
    """

    frames_native = True

    def __init__(self, attacks: Sequence[Attack], weights: Sequence[float] | None = None,
                 per: str = "batch", **options):
        super().__init__(**options)
        self.attacks = nn.ModuleList(_check_children("OneOf", attacks))
        if weights is None:
            weights = [1.0] * len(self.attacks)
        weights = [float(w) for w in weights]
        if len(weights) != len(self.attacks) or min(weights) < 0 or sum(weights) <= 0:
            raise AttackError("OneOf: weights must be one non-negative number per attack, not all zero")
        if per not in PER:
            raise AttackError(f"OneOf: bad value {per!r} for 'per'; expected one of {', '.join(PER)}")
        resizing = [a.label() for a in self.attacks if a.changes_size]
        if per == "sample" and resizing:
            raise AttackError(f"OneOf: per='sample' needs attacks that keep the size; {resizing[0]} changes it")
        self.weights, self.per = weights, per
        self.grad = worst_grad(a.grad for a in self.attacks)
        self.changes_size = bool(resizing)
        self.needs_cover = any(a.needs_cover for a in self.attacks)

    def extra_repr(self) -> str:
        return ", ".join(filter(None, [super().extra_repr(), f"weights={self.weights}, per={self.per!r}"]))

    def draw(self, shape, generator):
        w = torch.tensor(self.weights, dtype=torch.float64, device=generator.device)
        if self.per == "batch":
            index = int(torch.multinomial(w, 1, generator=generator))
            return {"index": index, "params": self.attacks[index].sample(shape, generator)}
        index = torch.multinomial(w, shape[0], replacement=True, generator=generator)
        params = []
        for i, attack in enumerate(self.attacks):
            n = int((index == i).sum())
            params.append(attack.sample((n, *shape[1:]), generator) if n else None)
        return {"index": index, "params": params}

    def output_shape(self, shape, params):
        if self.per == "sample":
            return tuple(shape)
        return self.attacks[params["index"]].output_shape(shape, params["params"])

    def transform(self, x, params, cover):
        if self.per == "batch":
            attack = self.attacks[params["index"]]
            return attack(x, params["params"], cover=cover if attack.needs_cover else None)
        index = params["index"].to(x.device)
        order, parts = [], []
        for i, (attack, p) in enumerate(zip(self.attacks, params["params"])):
            if p is None:
                continue
            rows = (index == i).nonzero().flatten()
            part_cover = cover[rows] if attack.needs_cover else None
            parts.append(attack(x[rows], p, cover=part_cover))
            order.append(rows)
        return torch.cat(parts)[torch.cat(order).argsort()]


class Maybe(OneOf):
    """Apply `attack` with probability `p`, else pass the input through; `per` as
    in OneOf. Params: {"index": 0 applied / 1 skipped (per batch or per sample), ...}.
    Spec syntax: the key `p=` on any step, e.g. `jpeg:quality=50,p=0.5`.
    """

    def __init__(self, attack: Attack, p: float, per: str = "batch"):
        p = check_option("Maybe", "p", P_SPEC, p)
        super().__init__([attack, Identity()], weights=[p, 1 - p], per=per)
        self.p = p
