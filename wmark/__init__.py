"""wmark: robust invisible watermarking for images and video.

The public names are imported on first use, so that commands which only read model cards
(``wmark models``) start without importing torch.
"""
from importlib import import_module

from wmark.errors import WmarkError

__all__ = ["Detection", "Extraction", "Watermarker", "WmarkError", "load"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("wmark.api"), name)
    raise AttributeError(f"module 'wmark' has no attribute {name!r}")
