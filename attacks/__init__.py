"""Attacks on watermarked images and videos, for training and for benchmarks.

    import attacks
    attack = attacks.create("jpeg:quality=40-80")    # or create("jpeg", quality=(40, 80))
    params = attack.sample(x.shape, generator)        # draw once ...
    y = attack(x, params)                             # ... replay on any model

`names()` lists the registry, `describe()` documents it. Chains are written with
`+`, random picks with `|` (or a list of specs), and `p=` on any step applies it
with probability p. This package does not depend on `wmark`.
"""

from . import codecs, cover, filters, geometric, h264_proxy, jpeg_proxies, photometric, video  # noqa: F401  (register)
from .base import GRADS, Attack, AttackError
from .compose import Compose, Maybe, OneOf
from .spec import create, describe, names

__all__ = ["GRADS", "Attack", "AttackError", "Compose", "Maybe", "OneOf", "create", "describe", "names"]
