"""What the Watermarker accepts: (B, 3, H, W) tensors in [0, 1], PIL images, (H, W, 3) uint8 arrays and paths;
and the same kind given back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wmark.errors import WmarkError
from wmark.io.image import from_uint8, read_image, to_uint8
from wmark.io.media import media_kind


def is_video(image) -> bool:
    """Whether ``image`` is the path of a video file."""
    return isinstance(image, (str, Path)) and media_kind(image) == "video"


def to_tensor(image) -> tuple[torch.Tensor, Image.Image | str]:
    """(B, 3, H, W) float in [0, 1] from a tensor, PIL image, numpy HWC uint8 array or file path.

    The second value says how to give the result back: "tensor", "numpy", or the PIL image itself
    (an RGBA image gets its own alpha back; other modes come back as RGB).
    """
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise WmarkError(f"expected a (B, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
        return x.float(), "tensor"
    if isinstance(image, Image.Image):
        return to_tensor(np.asarray(image.convert("RGB")))[0], image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise WmarkError("expected an (H, W, 3) uint8 array")
        return from_uint8(image)[None], "numpy"
    if isinstance(image, (str, Path)):
        return read_image(image).rgb, "tensor"
    raise WmarkError(f"cannot watermark an object of type {type(image).__name__}")


def from_tensor(x: torch.Tensor, kind: Image.Image | str):
    """``x`` given back as the kind :func:`to_tensor` noted (uint8 kinds are rounded)."""
    if isinstance(kind, str) and kind == "tensor":
        return x
    array = to_uint8(x[0])
    if isinstance(kind, str):
        return array
    marked = Image.fromarray(array)
    if kind.mode == "RGBA":
        marked.putalpha(kind.getchannel("A"))
    return marked


def one_image(image) -> torch.Tensor:
    """(1, 3, H, W) from anything :func:`to_tensor` takes; a batch is refused."""
    x, _ = to_tensor(image)
    if x.shape[0] != 1:
        raise WmarkError(f"extract and detect take one image at a time, got a batch of {x.shape[0]}")
    return x
