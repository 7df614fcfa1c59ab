"""Atomic output files: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wmark.errors import WmarkError


def check_folder(path: str | os.PathLike) -> None:
    """Raise a WmarkError naming the problem when ``path``'s folder is missing or is not a folder."""
    folder = Path(path).parent
    if not folder.exists():
        raise WmarkError(f"{path}: cannot write, the folder {folder} does not exist")
    if not folder.is_dir():
        raise WmarkError(f"{path}: cannot write, {folder} is not a folder")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` when the block succeeds.

    The temporary name is hidden, unique, and keeps the suffix of ``path`` so that writers
    choosing the format by extension (Pillow, PyAV) behave the same. It does not exist yet:
    the caller creates it. On any exception the temporary file is removed and ``path`` is left
    untouched; on success ``os.replace`` swaps it in atomically (same directory, same filesystem).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(8)}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
