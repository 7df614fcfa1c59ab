"""Attacks on watermarked images and videos, for training and for benchmarks.

    import attacks
    attack = attacks.create("jpeg:quality=40-80")    # or create("jpeg", quality=(40, 80))
    params = attack.sample(x.shape, generator)        # draw once ...
    y = attack(x, params)                             # ... replay on any model

`names()` lists the registry, `describe()` documents it. Chains are written with
`+`; a list of specs picks one per call. This package does not depend on `wmark`.
"""

from . import codecs, cover, geometric, jpeg_proxies, photometric, video  # noqa: F401  (register)
from .base import GRADS, Attack, AttackError
from .compose import Compose, OneOf
from .spec import create, describe, names

__all__ = ["GRADS", "Attack", "AttackError", "Compose", "OneOf", "create", "describe", "names"]
