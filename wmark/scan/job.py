"""The per-file job of a forensic scan: one file in, one report row out, every model tried.

``scan_file(config, path)`` never raises, and the same function runs in this process, in a pool
of worker processes or on a dask cluster (:mod:`wmark.scan.engines`). Each file is read once: hashed,
decoded once (images whole, videos in frame batches), and each model decodes the same pixels.
The best detection (smallest p-value) is copied to the top of the row.
"""
from __future__ import annotations

import functools
import hashlib
import os
import stat
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from wmark import zoo
from wmark.api import Extraction, Watermarker, load, posed
from wmark.device import resolve_device
from wmark.errors import WmarkError
from wmark.interface.defaults import DEFAULT_FPR, FRAME_BATCH, FRAME_GROUP
from wmark.io.image import read_image
from wmark.io.media import media_kind
from wmark.stats import check_fpr
from wmark.sync import DEFAULT_SEARCH
from wmark.sync.search import level as search_level
from wmark.watermarker import video

VIDEO_FIELDS = ("frames", "frames_per_read", "detected_share", "segments")
_BEST_FIELDS = ("detected", "message", "hex", "p_value", "bit_confidence", "transform", "rotation", "reframe",
               "mark_present")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScanConfig:
    """What every worker needs: the models (names or folders; None is the default), key, threshold."""

    models: tuple[str | None, ...] = (None,)
    key: str | None = None
    fpr: float = DEFAULT_FPR
    device: str = "auto"
    timeout: float | None = None
    batch: int = FRAME_BATCH
    search: str = DEFAULT_SEARCH

    def checked(self) -> ScanConfig:
        """This config with model folders made absolute (workers may run elsewhere); WmarkError for
        an unknown model or a bad option, before any file is read."""
        check_fpr(self.fpr)
        search_level(self.search)
        resolve_device(self.device)
        names = [zoo.find_card(m).name for m in self.models]
        if len(set(names)) != len(names):
            raise WmarkError(f"a model is given twice: {', '.join(names)}")
        if self.timeout is not None and not self.timeout > 0:
            raise WmarkError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.batch < 1:
            raise WmarkError(f"batch must be at least 1, got {self.batch}")
        folders = tuple(os.path.abspath(m) if m is not None and os.path.isfile(os.path.join(m, zoo.CARD)) else m
                        for m in self.models)
        return replace(self, models=folders)


class ScanTimeout(Exception):
    """A file took longer than the scan's ``timeout``."""


class _Clock:
    """Milliseconds spent per stage, and the file's deadline."""

    def __init__(self, timeout: float | None) -> None:
        self.start = time.perf_counter()
        self.timeout = timeout
        self.ms: dict[str, float] = {}

    def check(self) -> None:
        if self.timeout is not None and time.perf_counter() - self.start > self.timeout:
            raise ScanTimeout(f"timed out after {self.timeout:g} s")

    @contextmanager
    def timed(self, stage: str):
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = round(self.ms.get(stage, 0.0) + 1000 * (time.perf_counter() - begin), 2)
        self.check()

    def total(self) -> dict[str, float]:
        return {**self.ms, "total": round(1000 * (time.perf_counter() - self.start), 2)}


@functools.lru_cache(maxsize=4)
def markers(models: tuple[str | None, ...], device: str) -> tuple[Watermarker, ...]:
    """The loaded models, once per process (each worker keeps its own)."""
    return tuple(load(m, device=device) for m in models)


def warm(config: ScanConfig) -> None:
    """Load the models now (a worker's initializer), so that the first file is not slow."""
    markers(config.models, config.device)


def _result(marker: Watermarker, found: Extraction, ms: float) -> dict:
    row = {"model": marker.name, **{k: getattr(found, k) for k in _BEST_FIELDS}}
    row.update({k: getattr(found, k) for k in VIDEO_FIELDS if hasattr(found, k)})
    return row | {"ms": {"detect": round(ms, 2)}}


def detect_image(models: Iterable[Watermarker], x: torch.Tensor, key: str | None = None,
                 fpr: float = DEFAULT_FPR, search: str = DEFAULT_SEARCH) -> list[dict]:
    """One result per model for an image (1, 3, H, W): model, detected, message, p_value, ..., the transform
    found by ``search`` (:mod:`wmark.sync.search`)."""
    results = []
    for marker in models:
        begin = time.perf_counter()
        found = marker.extract(x, key=key, fpr=fpr, search=search)
        results.append(_result(marker, found, 1000 * (time.perf_counter() - begin)))
    return results


def _detect_video(models: tuple[Watermarker, ...], path: str, config: ScanConfig, clock: _Clock) -> list[dict]:
    """The video reading recipe of ``extract`` (:mod:`wmark.watermarker.video`): each model's pose is found on a few
    frames, then the frames are decoded once and every model reads every batch under its pose."""
    with clock.timed("detect"):
        poses = [marker.video_pose(path, config.search, config.key, config.fpr) for marker in models]
    level = search_level(config.search)
    spent = [0.0] * len(models)

    @contextmanager
    def reading(i: int):
        begin = time.perf_counter()
        with clock.timed("detect"):
            yield
        spent[i] += time.perf_counter() - begin

    begin = time.perf_counter()
    indices, logits = video.read([marker.reader for marker in models], path, poses, batch=config.batch,
                                 timed=reading, group=FRAME_GROUP)
    clock.ms["decode"] = round(clock.ms.get("decode", 0.0) + 1000 * (time.perf_counter() - begin - sum(spent)), 2)
    results = []
    with clock.timed("detect"):
        for i, marker in enumerate(models):
            begin = time.perf_counter()
            found = marker.extract_frames(indices, logits[i], key=config.key, fpr=config.fpr,
                                          hypotheses=marker.video_factor(level, poses[i]),
                                          frames_per_read=FRAME_GROUP)
            results.append(_result(marker, posed(found, poses[i]), 1000 * (spent[i] + time.perf_counter() - begin)))
    return results


def _regular_size(path: str) -> int:
    """The size of a regular file; special files (FIFOs, devices, sockets) are refused unopened."""
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise WmarkError("is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise WmarkError("not a regular file (FIFO, socket or device): not opened")
    return info.st_size


def _sha256(path: str, clock: _Clock) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            clock.check()
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (WmarkError, ScanTimeout)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def error_row(path: str, reason: str, ms: dict | None = None, **known) -> dict:
    """A report row for a file that could not be scanned."""
    row = {"path": path, "size": None, "sha256": None, "type": None, **known}
    return row | {"best_model": None, **dict.fromkeys(_BEST_FIELDS), "results": [], "error": reason, "ms": ms}


def scan_file(config: ScanConfig, path: str) -> dict:
    """Scan one file: a report row, with ``error`` set (and never an exception) when it fails."""
    clock = _Clock(config.timeout)
    known: dict = {}
    try:
        with clock.timed("read"):
            known["size"] = _regular_size(path)
            known["sha256"] = _sha256(path, clock)
        known["type"] = "other"
        if known["size"] == 0:
            raise WmarkError("empty file")
        known["type"] = media_kind(path)
        models = markers(config.models, config.device)
        if known["type"] == "video":
            results = _detect_video(models, path, config, clock)
        else:
            with clock.timed("decode"):
                x = read_image(path).rgb
            with clock.timed("detect"):
                results = detect_image(models, x, config.key, config.fpr, config.search)
    except Exception as exc:  # a forensic scan reports every failure and goes on
        return error_row(path, _reason(exc), clock.total(), **known)
    best = min(results, key=lambda r: r["p_value"])
    row = {"path": path, **known, "best_model": best["model"], **{k: best[k] for k in _BEST_FIELDS}}
    row.update({k: best[k] for k in VIDEO_FIELDS if k in best})
    return row | {"results": results, "error": None, "ms": clock.total()}
