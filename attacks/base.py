"""The `Attack` base class, its error type, option checking and the registry.

An attack splits, like kornia's augmentations (kornia/augmentation/base.py), into
drawing parameters and applying them:

    params = attack.sample(x.shape, generator)   # everything random, drawn once
    y = attack(x, params)                         # deterministic given params

Images are float tensors in [0, 1] shaped (B, 3, H, W); clips are (B, T, 3, H, W).
"""

from __future__ import annotations

import inspect
import math
import numbers
import re

import numpy as np
import torch
from torch import nn

GRADS = ("exact", "approx", "ste", "none")

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"\(?\s*({_NUMBER})\s*(?:-|,)\s*({_NUMBER})\s*\)?")

_REGISTRY: dict[str, type[Attack]] = {}
_ALIASES: dict[str, str] = {}
_UNAVAILABLE: dict[str, str] = {}  # known names this build lacks -> why


class AttackError(ValueError):
    """A user-caused problem with an attack: unknown name, bad option, missing cover."""


def param(default, doc, *, lo=None, hi=None, choices=None, range=True):
    """One entry of an attack's `params_doc`: JSON-friendly, also used for checking.

    The type is taken from `default` (int, float, or str when `choices` is given).
    `lo`/`hi` are inclusive bounds; `range` says whether a (lo, hi) pair is allowed.
    """
    if choices is not None:
        return {"default": default, "doc": doc, "type": "str", "choices": list(choices)}
    kind = "int" if isinstance(default, int) else "float"
    return {"default": default, "doc": doc, "type": kind, "min": lo, "max": hi, "range": range}


def register(name, *aliases):
    """Class decorator: register an attack under `name` (and optional aliases)."""

    def wrap(cls):
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"attack {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        for alias in aliases:
            _ALIASES[alias] = name
        return cls

    return wrap


def register_unavailable(name: str, why: str, *aliases):
    """Record a known attack this installation lacks, so asking for it says why."""
    for key in (name, *aliases):
        _UNAVAILABLE[key] = why


def lookup(name: str) -> type[Attack]:
    """The attack class registered under `name` or one of its aliases."""
    key = _ALIASES.get(name, name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    valid = ", ".join(registered())
    if key in _UNAVAILABLE:
        raise AttackError(f"attack {name!r} is unavailable: {_UNAVAILABLE[key]}; valid: {valid}")
    raise AttackError(f"unknown attack {name!r}; valid: {valid}")


def registered() -> list[str]:
    """Registered attack names (aliases excluded), sorted."""
    return sorted(_REGISTRY)


def _expectation(spec: dict) -> str:
    if spec["type"] == "str":
        return "one of " + ", ".join(spec["choices"])
    kind = "an integer" if spec["type"] == "int" else "a number"
    lo = "-inf" if spec["min"] is None else spec["min"]
    hi = "inf" if spec["max"] is None else spec["max"]
    return f"{kind} in [{lo}, {hi}]" + (" or a range lo-hi" if spec["range"] else "")


def _parse_text(text: str, spec: dict):
    """Turn a spec-string value into a number or (lo, hi) pair (strings stay strings)."""
    if spec["type"] == "str":
        return text
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    m = _RANGE.fullmatch(text)
    if m is None:
        raise ValueError(text)
    return (float(m.group(1)), float(m.group(2)))


def _number(v, spec: dict):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(v)
    if spec["type"] == "int":
        if v != int(v):
            raise ValueError(v)
        v = int(v)
    else:
        v = float(v)
    if (spec["min"] is not None and v < spec["min"]) or (spec["max"] is not None and v > spec["max"]):
        raise ValueError(v)
    return v


def check_option(attack: str, key: str, spec: dict, value):
    """Validate one option value; return a scalar or a (lo, hi) tuple."""
    try:
        if isinstance(value, str):
            value = _parse_text(value, spec)
        if spec["type"] == "str":
            value = str(value)
            if value not in spec["choices"]:
                raise ValueError(value)
            return value
        if isinstance(value, (tuple, list)):
            if not spec["range"] or len(value) != 2:
                raise ValueError(value)
            lo, hi = (_number(v, spec) for v in value)
            if lo > hi:
                raise ValueError(value)
            return (lo, hi)
        return _number(value, spec)
    except (ValueError, TypeError):
        raise AttackError(
            f"{attack}: bad value {value!r} for {key!r}; expected {_expectation(spec)}"
        ) from None


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Value of `y`, gradient of the identity w.r.t. `x` (the STE, x + (y - x).detach()).

    Written as y.detach() + (x - x.detach()) so the forward value is exactly `y`.
    """
    return y.detach() + (x - x.detach())


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8, rounding (never truncating)."""
    x = (x.detach().float() * 255).round().clamp(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1] on `like`'s device and dtype."""
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    return t.to(device=like.device, dtype=like.dtype) / 255


def _per_frame(v, b: int, t: int, ndim: int):
    """Spread clip params over frames: full-rank maps are flattened, (B, ...) repeated."""
    if not torch.is_tensor(v) or v.dim() == 0:
        return v
    if v.dim() == ndim:
        return v.flatten(0, 1)
    if v.shape[0] == b:
        return v.repeat_interleave(t, dim=0)
    return v


class Attack(nn.Module):
    """Base class. Subclasses set `grad`, `params_doc` and a docstring, and implement
    `draw(shape, generator) -> dict` (optional) and `transform(x, params, cover)`.

    Parameters are drawn per sample (per clip for video: every frame of a clip gets
    the same quality, angle or box; noise-like maps are drawn per frame). Values that
    fix the output size (crop and resize scales) are drawn once per batch.

    `sample(shape, generator=None)` uses only `generator`. When it is None the attack
    uses its own `self.generator`, a CPU generator seeded with 0 at construction, so
    an unseeded run is reproducible and successive calls still differ. A CUDA
    generator draws on CUDA. Params are dicts of tensors and plain values; replaying
    the same params on the same input gives bit-identical output.

    By default `transform` sees 4-D images: a clip batch (B, T, 3, H, W) is flattened
    to frames, and params are spread over frames (tensors with as many dimensions as
    the input, i.e. per-frame maps, are flattened; other tensors with leading size B
    are repeated T times). Attacks with `frames_native = True` get 4-D or 5-D input
    as is.
    """

    name: str | None = None
    grad: str = "exact"
    changes_size: bool = False
    needs_cover: bool = False
    frames_native: bool = False
    params_doc: dict = {}

    def __init__(self, **options):
        super().__init__()
        self.options = self.resolve_options(options)
        self.generator = torch.Generator().manual_seed(0)

    @classmethod
    def label(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def resolve_options(cls, options: dict) -> dict:
        """Check user options against `params_doc` and fill in defaults."""
        unknown = sorted(set(options) - set(cls.params_doc))
        if unknown:
            valid = ", ".join(cls.params_doc) or "none"
            raise AttackError(f"{cls.label()}: unknown parameter {unknown[0]!r}; valid: {valid}")
        resolved = {}
        for key, spec in cls.params_doc.items():
            value = options.get(key)
            if value is None:
                value = spec["default"]
            resolved[key] = check_option(cls.label(), key, spec, value)
        return resolved

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())

    # -- drawing parameters -------------------------------------------------

    def sample(self, shape, generator: torch.Generator | None = None) -> dict:
        """Draw every random choice for an input of `shape`, using only `generator`."""
        shape = tuple(shape)
        if len(shape) not in (4, 5) or shape[-3] != 3:
            raise AttackError(
                f"{self.label()}: expected shape (B, 3, H, W) or (B, T, 3, H, W), got {shape}"
            )
        return self.draw(shape, self.generator if generator is None else generator)

    def draw(self, shape: tuple, generator: torch.Generator) -> dict:
        return {}

    def draw_option(self, key: str, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n,) values of option `key`: constant, or uniform over its (lo, hi) range."""
        value, kind = self.options[key], self.params_doc[key]["type"]
        dev = generator.device
        if isinstance(value, tuple):
            lo, hi = value
            if kind == "int":
                return torch.randint(lo, hi + 1, (n,), generator=generator, device=dev)
            return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        dtype = torch.int64 if kind == "int" else torch.float64
        return torch.full((n,), value, dtype=dtype, device=dev)

    def output_shape(self, shape: tuple, params: dict) -> tuple:
        """Shape of the output for an input of `shape` under `params`."""
        return tuple(shape)

    # -- applying -----------------------------------------------------------

    def forward(self, x: torch.Tensor, params: dict | None = None, *, cover=None) -> torch.Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() not in (4, 5) or x.shape[-3] != 3:
            raise AttackError(
                f"{self.label()}: expected a float tensor (B, 3, H, W) or (B, T, 3, H, W) in [0, 1]"
            )
        if self.needs_cover:
            if cover is None:
                raise AttackError(
                    f"{self.label()} mixes marked and cover pixels: pass cover= (the unmarked input)"
                )
            if cover.shape != x.shape:
                raise AttackError(
                    f"{self.label()}: cover shape {tuple(cover.shape)} differs from input {tuple(x.shape)}"
                )
        else:
            cover = None
        if params is None:
            params = self.sample(x.shape)
        if x.dim() == 4 or self.frames_native:
            return self.transform(x, params, cover)
        b, t = x.shape[:2]
        flat = {k: _per_frame(v, b, t, x.dim()) for k, v in params.items()}
        y = self.transform(x.flatten(0, 1), flat, None if cover is None else cover.flatten(0, 1))
        return y.unflatten(0, (b, t))

    def transform(self, x: torch.Tensor, params: dict, cover: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


def worst_grad(grads) -> str:
    """The least faithful of several gradient kinds (exact < approx < ste < none)."""
    return max(grads, key=GRADS.index, default="exact")


def class_doc(cls) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


@register("identity")
class Identity(Attack):
    """No change; the clean baseline."""

    def transform(self, x, params, cover):
        return x


class PerSample(Attack):
    """An attack whose one random option, `key`, is drawn once per sample (or per clip)."""

    key: str

    def draw(self, shape, generator):
        return {self.key: self.draw_option(self.key, shape[0], generator)}
