"""The benchmark engine: model x strength x attack x frame -> rows of quality and robustness.

Every input (image, or sampled frames of a video) gets a random codeword per payload length, drawn
from the seed and the input's name. Each model marks it at each strength (rounded to 8 bits); each
attack's params are drawn once per (input, attack, strength) from a generator seeded by those names
and the seed, and replayed on every model, so all models face the very same attack. Video frames go
through the models in batches, and each batch of consecutive frames is attacked as one clip, so a
video codec sees motion. A row's ``psnr``/``ssim`` compare the marked 8-bit frame with the original,
``bit_acc``/``word_ok``/``p_value`` the bits decoded after the attack with the embedded codeword.
"""
from __future__ import annotations

import hashlib
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import attacks as attack_lib
from wmark import pipeline
from wmark.bench import peers
from wmark.api import Watermarker, load
from wmark.errors import WmarkError
from wmark.io.image import read_image, to_uint8
from wmark.io.media import expand_media, media_kind
from wmark.io.video import read_frames, spread_frames
from wmark.perception.flip import sampled_flip_ratio
from wmark.stats import bit_accuracy, match_p_value, psnr, ssim

VIDEO_ATTACKS = ("h264:crf=23", "h264:crf=28", "h264:crf=35")
DEFAULT_ATTACKS = (
    "identity",
    "jpeg:quality=90", "jpeg:quality=75", "jpeg:quality=50",
    "webp:quality=50",
    "resize:scale=0.5", "resize:scale=0.75",
    "crop:scale=0.5", "crop:scale=0.7", "crop:scale=0.9",
    "rotate:degrees=5",
    "hflip",
    "resize:scale=1,width=0.8",
    "blur:sigma=1",
    "noise:std=0.02",
    "brightness:delta=0.25", "brightness:delta=-0.25",
    "contrast:factor=0.7", "contrast:factor=1.3",
    *VIDEO_ATTACKS,
    "jpeg:quality=75+resize:scale=0.75+crop:scale=0.9",
)
"""The default grid. ``crop:scale`` is the area kept; ``resize:scale=1,width=0.8`` changes the aspect; brightness
adds ±0.25 (25% of full range); the H.264 entries run on videos only. Frames are decoded as received (no search)."""

COLUMNS = ("model", "strength", "attack", "input", "frame", "psnr", "ssim", "flip", "flip_ratio", "bit_acc",
           "word_ok", "p_value", "embed_ms", "extract_ms")
MEANS = ("psnr", "ssim", "flip", "flip_ratio", "bit_acc", "word_ok", "embed_ms", "extract_ms")
"""``flip``/``flip_ratio``: FLIP of the marked frame and its ratio to a JPEG 75 re-save's, measured with ``flip=True``
on the centre 512 px crop at 1:1 (:func:`wmark.perception.flip.sampled_flip_ratio`); empty otherwise."""


@dataclass
class Result:
    """Rows (one per model, strength, attack, input, frame), errors, and the run's settings."""

    rows: list[dict]
    errors: list[dict]
    settings: dict
    seconds: float
    video_inputs: list[str] = field(default_factory=list)


def stable_seed(*parts) -> int:
    """A 63-bit seed from ``parts``, the same on every machine and run (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def load_models(names: list[str] | None, device: str = "auto") -> list:
    """Watermarkers by checkpoint name or folder (None: the default), and ``imwatermark:*`` peers."""
    return [peers.Peer(n) if peers.is_peer(n) else load(n, device) for n in (names or [None])]


def _strengths(model, requested: list[float | None]) -> list[float | None]:
    """Strength labels a model runs at: the requested ones (None = its card's, unless also requested by
    value); peers have no knob."""
    if not isinstance(model, Watermarker):
        return [None]
    return [label for label in requested if label is not None or model.card.strength not in requested]


def _resolved(model, label: float | None) -> float | None:
    return model.card.strength if label is None and isinstance(model, Watermarker) else label


def _codeword(seed: int, name: str, bits: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(stable_seed(seed, "codeword", name, bits))
    return torch.randint(0, 2, (bits,), generator=generator)


def _batches(path: Path, kind: str, frames: int | None, batch: int):
    """(frame indices, (B, 3, H, W) float, is_clip) for an image or a video's (sampled) frames."""
    if kind == "image":
        yield [0], read_image(path).rgb, False
        return
    for indices, x in read_frames(path, batch=batch, select=spread_frames(path, frames)):
        yield indices, x, True


def _timed(fn, *args, **kwargs) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - start) * 1000


def _attack(attack, x: torch.Tensor, cover: torch.Tensor, params: dict, clip: bool) -> torch.Tensor:
    """Apply ``attack`` with fixed params; a video batch is attacked as one clip (1, T, 3, H, W)."""
    if clip:
        return attack(x[None], params, cover=cover[None] if attack.needs_cover else None)[0]
    return attack(x, params, cover=cover if attack.needs_cover else None)


def run(inputs: list[str | Path], models: list, attacks: list[str] | None = None,
        strengths: list[float | None] | None = None, frames: int | None = None, seed: int = 0,
        batch: int = 16, device: str = "auto", flip: bool = False) -> Result:
    """Benchmark ``models`` (from :func:`load_models`) on ``inputs``; a failing input is recorded and skipped.

    ``attacks`` None is :data:`DEFAULT_ATTACKS` (the H.264 entries on videos only). ``strengths``
    None runs each model at its card's strength. ``flip`` measures FLIP on every marked frame (see :data:`MEANS`).
    """
    if frames is not None and frames < 1:
        raise WmarkError(f"--frames must be at least 1, got {frames}")
    if batch < 1:
        raise WmarkError(f"--batch must be at least 1, got {batch}")
    for strength in strengths or []:
        if strength is not None and not (math.isfinite(strength) and strength > 0):
            raise WmarkError(f"strength must be a positive number, got {strength}")
    specs = list(DEFAULT_ATTACKS if attacks is None else attacks)
    bench = _Bench(models, {spec: attack_lib.create(spec) for spec in specs}, list(strengths or [None]), seed, flip)
    files = [(path, name.as_posix()) for path, name in expand_media(inputs)]
    if not files:
        raise WmarkError("no images or videos among the inputs")
    videos: list[str] = []
    start = time.perf_counter()
    for path, name in files:
        try:
            kind = media_kind(path)
            grid = [s for s in specs if kind == "video" or attacks is not None or s not in VIDEO_ATTACKS]
            if kind == "video":
                videos.append(name)
            bench.start(name)
            for indices, x, clip in _batches(path, kind, frames, batch):
                bench.batch(indices, x, clip, grid)
        except (WmarkError, attack_lib.AttackError) as exc:
            bench.errors.append({"input": str(path), "error": str(exc)})
    if not bench.rows:
        first = bench.errors[0]["error"] if bench.errors else "no rows"
        raise WmarkError(f"no input could be benchmarked: {first}")
    settings = {
        "inputs": [str(p) for p in inputs], "models": [m.name for m in models], "attacks": specs,
        "strengths": list(strengths or [None]), "frames": frames, "seed": seed, "batch": batch, "flip": flip,
        **environment(device),
    }
    return Result(bench.rows, bench.errors, settings, round(time.perf_counter() - start, 3), videos)


class _Bench:
    """The rows and errors of a run, and the per-input state: generators, codewords, failed models."""

    def __init__(self, models: list, built: dict, requested: list[float | None], seed: int, flip: bool) -> None:
        self.models, self.built, self.seed, self.flip = models, built, seed, flip
        self.runs = {m.name: _strengths(m, requested) for m in models}
        self.labels = list(dict.fromkeys(label for m in models for label in self.runs[m.name]))
        self.rows: list[dict] = []
        self.errors: list[dict] = []
        self._reported: set[tuple] = set()

    def start(self, name: str) -> None:
        self.name, self.generators, self.failed = name, {}, set()

    def _error(self, **entry) -> None:
        key = tuple(entry.items())
        if key not in self._reported:
            self._reported.add(key)
            self.errors.append(entry)

    def _generator(self, spec: str, label: float | None) -> torch.Generator:
        key = (spec, label)
        if key not in self.generators:
            tag = "default" if label is None else float(label)
            self.generators[key] = torch.Generator().manual_seed(stable_seed(self.seed, self.name, spec, tag))
        return self.generators[key]

    def _mark(self, model, label, x: torch.Tensor, clip: bool) -> dict | None:
        """The marked 8-bit batch (a video's frames in the model's video domain) and its quality, or None when the
        model refuses the input."""
        codeword = _codeword(self.seed, self.name, model.bits)
        strength = _resolved(model, label)
        try:
            y, ms = _timed(model.embed_tensor, x, codeword, strength, video=clip)
        except WmarkError as exc:
            self.failed.add(model.name)
            self._error(input=self.name, model=model.name, error=str(exc))
            return None
        y = pipeline.quantize(y)
        visibility = [sampled_flip_ratio(to_uint8(a), to_uint8(b)) if self.flip else (None, None) for a, b in zip(x, y)]
        return {"model": model, "marked": y, "codeword": codeword, "strength": strength, "embed_ms": ms / len(x),
                "psnr": psnr(y, x).tolist(), "ssim": ssim(y, x).tolist(),
                "flip": [v[0] for v in visibility], "flip_ratio": [v[1] for v in visibility]}

    def _logits(self, model, spec: str, attacked: torch.Tensor) -> tuple[torch.Tensor, float]:
        try:
            return _timed(model.frame_logits, attacked)
        except WmarkError as exc:  # e.g. attacked below the decoder's minimum size
            self._error(input=self.name, model=model.name, attack=spec,
                        error=f"{exc} (counted as no signal: logits 0)")
            return torch.zeros(len(attacked), model.bits), 0.0

    def batch(self, indices: list[int], x: torch.Tensor, clip: bool, grid: list[str]) -> None:
        """All rows of one batch of frames: mark with each model and strength, attack, decode."""
        for label in self.labels:
            marked = [self._mark(m, label, x, clip) for m in self.models
                      if m.name not in self.failed and label in self.runs[m.name]]
            for spec in grid:
                attack = self.built[spec]
                params = attack.sample((1, *x.shape) if clip else x.shape, self._generator(spec, label))
                for entry in filter(None, marked):
                    model = entry["model"]
                    logits, ms = self._logits(model, spec, _attack(attack, entry["marked"], x, params, clip))
                    self._rows(entry, spec, indices, (logits > 0).to(torch.uint8), ms / len(x))

    def _rows(self, entry: dict, spec: str, indices: list[int], decoded: torch.Tensor, extract_ms: float) -> None:
        accuracy = bit_accuracy(decoded, entry["codeword"])
        p_values = match_p_value(decoded, entry["codeword"])
        for i, frame in enumerate(indices):
            self.rows.append({
                "model": entry["model"].name, "strength": entry["strength"], "attack": spec, "input": self.name,
                "frame": frame, "psnr": entry["psnr"][i], "ssim": entry["ssim"][i], "flip": entry["flip"][i],
                "flip_ratio": entry["flip_ratio"][i], "bit_acc": float(accuracy[i]),
                "word_ok": bool(accuracy[i] == 1), "p_value": float(p_values[i]),
                "embed_ms": entry["embed_ms"], "extract_ms": extract_ms,
            })


def environment(device: str = "auto") -> dict:
    """Torch version and the device the run used, for the summary."""
    from wmark.device import resolve_device

    resolved = resolve_device(device)
    info = {"device": str(resolved), "torch": torch.__version__, "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads()}
    if resolved.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(resolved)
    return info


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def summarize(result: Result) -> dict:
    """Means per (model, strength, attack), the median p-value, speeds, errors and settings."""
    groups: dict[tuple, list[dict]] = {}
    for row in result.rows:
        groups.setdefault((row["model"], row["strength"], row["attack"]), []).append(row)
    table = []
    for (model, strength, attack), rows in groups.items():
        entry = {"model": model, "strength": strength, "attack": attack, "rows": len(rows)}
        for column in MEANS:
            values = [r[column] for r in rows if r[column] is not None]
            entry[column] = _finite(statistics.fmean(values)) if values else None
        entry["p_value_median"] = statistics.median(r["p_value"] for r in rows)
        table.append(entry)
    speed = {}
    for model in dict.fromkeys(r["model"] for r in result.rows):
        mine = [r for r in result.rows if r["model"] == model]
        embed, extract = statistics.fmean(r["embed_ms"] for r in mine), statistics.fmean(r["extract_ms"] for r in mine)
        speed[model] = {"embed_fps": _finite(1000 / embed) if embed else None,
                        "extract_fps": _finite(1000 / extract) if extract else None}
    frames = len({(r["input"], r["frame"]) for r in result.rows})
    return {
        "results": table,
        "speed": {"wall_s": result.seconds, "frames": frames, "rows": len(result.rows),
                  "rows_per_s": round(len(result.rows) / result.seconds, 3), "models": speed},
        "errors": result.errors,
        "settings": result.settings,
    }
