"""Building attacks from spec strings, and describing the registry.

Grammar:  choice := chain ("|" chain)*     chain := step ("+" step)*
          step := name [":" key "=" value ("," key "=" value)*]
A value is a number, a word, or a range `lo-hi` (also `(lo,hi)`), drawn per sample.
A choice, or a list of specs, builds a `OneOf` (one pick per call; `per="sample"` as
a keyword picks per sample). Any step also takes `p` (apply with probability p,
a `Maybe`) and, with it, `per=batch|sample`.
"""

from __future__ import annotations

import copy

from . import codecs, cover, filters, geometric, h264_proxy, jpeg_proxies, photometric  # noqa: F401  (register)
from .base import Attack, AttackError, check_option, class_doc, lookup, param, registered
from .compose import P_SPEC, PER, Compose, Maybe, OneOf
from .video import CODEC_CANDIDATES

_WRAPPER = {"p": P_SPEC, "per": param("batch", "draw p per batch or per sample", choices=PER)}


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
    unknown = sorted(set(options) - set(cls.params_doc) - set(_WRAPPER))
    if unknown:
        valid = ", ".join([*cls.params_doc, *_WRAPPER])
        raise AttackError(f"{cls.label()}: unknown parameter {unknown[0]!r}; valid: {valid}")
    wrap = {k: check_option(cls.label(), k, _WRAPPER[k], options.pop(k)) for k in _WRAPPER if k in options}
    attack = cls(**options)
    if "p" in wrap:
        return Maybe(attack, wrap["p"], per=wrap.get("per", "batch"))
    if wrap:
        raise AttackError(f"{cls.label()}: 'per' goes with 'p' (the probability of applying it)")
    return attack


def _chain(text: str, kwargs: dict) -> Attack:
    steps = text.split("+")
    if len(steps) == 1:
        return _step(text, kwargs)
    if kwargs:
        raise AttackError("keyword options apply to a single attack, not to a chain")
    return Compose([_step(step, {}) for step in steps])


def _choice(specs, kwargs: dict) -> OneOf:
    extra = sorted(set(kwargs) - {"per"})
    if extra:
        raise AttackError(f"a choice of attacks takes only the keyword per, not {extra[0]!r}")
    return OneOf([create(s) for s in specs], per=kwargs.get("per", "batch"))


def create(spec, **kwargs) -> Attack:
    """Build an attack from a spec string (`jpeg:quality=40-80+resize:scale=0.5`,
    `jpeg|blur`, `jpeg:quality=50,p=0.5`), a name plus keyword options
    (`create("jpeg", quality=(40, 80))`), a list of specs (a `OneOf`; keyword
    `per="sample"` picks per sample), or an `Attack` (returned as is).
    """
    if isinstance(spec, Attack):
        if kwargs:
            raise AttackError("keyword options apply to a name, not to an Attack instance")
        return spec
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise AttackError("an empty list of attacks")
        return _choice(spec, kwargs)
    if not isinstance(spec, str) or not spec.strip():
        raise AttackError(f"an attack spec must be a non-empty string, got {spec!r}")
    if "|" in spec:
        return _choice(spec.split("|"), kwargs)
    return _chain(spec, kwargs)


def names() -> list[str]:
    """Registered attack names, sorted (aliases such as `hevc` are accepted too)."""
    return registered()


def _described(name: str, cls) -> dict:
    return {
        "name": name,
        "grad": cls.grad,
        "params": copy.deepcopy(cls.params_doc),
        "doc": class_doc(cls),
        "changes_size": cls.changes_size,
        "needs_cover": cls.needs_cover,
    }


def describe() -> list[dict]:
    """One JSON-serializable dict per registered attack: name, grad, params, doc,
    changes_size and needs_cover."""
    return [_described(name, lookup(name)) for name in registered()]


def catalogue() -> list[dict]:
    """What `attacks/catalogue.json` holds: `describe()`'s entries for every build, with each
    codec attack once per candidate implementation, in order of preference, and the encoder and
    decoder it requires."""
    rows = [_described(name, lookup(name)) for name in registered() if name not in CODEC_CANDIDATES]
    for name, classes in CODEC_CANDIDATES.items():
        rows += [{**_described(name, cls), "requires": {"encoder": cls.encoder, "decoder": cls.decoder}}
                 for cls in classes]
    return sorted(rows, key=lambda row: row["name"])
