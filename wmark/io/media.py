"""Tell images from videos by their content, not their names."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from wmark.errors import WmarkError
from wmark.io.image import READ_FORMATS
from wmark.io.video import is_video_file


def media_kind(path: str | os.PathLike) -> str:
    """"image" when Pillow recognises the file's header, "video" when FFmpeg finds a video stream."""
    path = Path(path)
    if not path.is_file():
        raise WmarkError(f"no such file: {path}")
    try:
        with Image.open(path, formats=READ_FORMATS):
            return "image"
    except Image.DecompressionBombError:
        return "image"  # reading it says why it is refused
    except (UnidentifiedImageError, OSError, ValueError):
        pass
    if is_video_file(path):
        return "video"
    raise WmarkError(f"{path} is neither an image nor a video that wmark can read")
