"""Tell images from videos by their content, not their names."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from wmark.errors import WmarkError
from wmark.io.image import IMAGE_SUFFIXES, READ_FORMATS
from wmark.io.video import VIDEO_SUFFIXES, is_video_file


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


def expand_media(paths) -> list[tuple[Path, Path]]:
    """(file, name) pairs: files as given (named by their file name), folders walked for image and
    video files by extension (named relative to the folder), sorted."""
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    pairs: list[tuple[Path, Path]] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.suffix.lower() in suffixes and f.is_file())
            pairs.extend((f, f.relative_to(path)) for f in files)
        else:
            pairs.append((path, Path(path.name)))
    return pairs
