"""Attacks on watermarked images and videos, for training and for benchmarks.

    import attacks
    attack = attacks.create("jpeg:quality=40-80")    # or create("jpeg", quality=(40, 80))
    params = attack.sample(x.shape, generator)        # draw once ...
    y = attack(x, params)                             # ... replay on any model

`names()` lists the registry, `describe()` documents it. Chains are written with
`+`, random picks with `|` (or a list of specs), and `p=` on any step applies it
with probability p. This package does not depend on `wmark`.

The names below are imported on first use: `attacks.catalogue` lists the attacks from a
committed JSON file without importing torch.
"""
from importlib import import_module

_HOMES = {
    "GRADS": "base", "Attack": "base", "AttackError": "base",
    "Compose": "compose", "Maybe": "compose", "OneOf": "compose",
    "create": "spec", "describe": "spec", "names": "spec",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        import_module(f"{__name__}.spec")  # registers every attack
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
