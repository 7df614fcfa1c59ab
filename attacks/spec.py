"""Building attacks from spec strings, and describing the registry.

Grammar:  chain := step ("+" step)*      step := name [":" key "=" value ("," key "=" value)*]
A value is a number, a word, or a range `lo-hi` (also `(lo,hi)`), drawn per sample.
A list of specs builds a `OneOf`, picking one per call.
"""

from __future__ import annotations

import copy

from .base import Attack, AttackError, class_doc, lookup, registered
from .compose import Compose, OneOf


def _split_options(text: str) -> list[str]:
    """Split `k=v,k=(lo,hi)` on the commas outside parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def _step(text: str, kwargs: dict) -> Attack:
    name, _, rest = text.partition(":")
    cls = lookup(name.strip().lower())
    options = {}
    for item in _split_options(rest):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise AttackError(f"{cls.label()}: expected key=value, got {item!r} in {text.strip()!r}")
        if key in options:
            raise AttackError(f"{cls.label()}: {key!r} given twice")
        options[key] = value.strip()
    for key, value in kwargs.items():
        if key in options:
            raise AttackError(f"{cls.label()}: {key!r} given both in the spec and as a keyword")
        options[key] = value
    return cls(**options)


def create(spec, **kwargs) -> Attack:
    """Build an attack from a spec string (`jpeg:quality=40-80+resize:scale=0.5`),
    a name plus keyword options (`create("jpeg", quality=(40, 80))`), a list of
    specs (a `OneOf`), or an `Attack` (returned as is).
    """
    if isinstance(spec, Attack):
        if kwargs:
            raise AttackError("keyword options apply to a name, not to an Attack instance")
        return spec
    if isinstance(spec, (list, tuple)):
        if kwargs:
            raise AttackError("keyword options apply to a single attack, not to a list")
        if not spec:
            raise AttackError("an empty list of attacks")
        return OneOf([create(s) for s in spec])
    if not isinstance(spec, str) or not spec.strip():
        raise AttackError(f"an attack spec must be a non-empty string, got {spec!r}")
    steps = spec.split("+")
    if len(steps) == 1:
        return _step(spec, kwargs)
    if kwargs:
        raise AttackError("keyword options apply to a single attack, not to a chain")
    return Compose([_step(step, {}) for step in steps])


def names() -> list[str]:
    """Registered attack names, sorted (aliases such as `hevc` are accepted too)."""
    return registered()


def describe() -> list[dict]:
    """One JSON-serializable dict per registered attack: name, grad, params, doc,
    changes_size and needs_cover."""
    rows = []
    for name in registered():
        cls = lookup(name)
        rows.append({
            "name": name,
            "grad": cls.grad,
            "params": copy.deepcopy(cls.params_doc),
            "doc": class_doc(cls),
            "changes_size": cls.changes_size,
            "needs_cover": cls.needs_cover,
        })
    return rows
