"""The benchmark engine: model x strength x attack x frame -> rows of quality and robustness.

Every input (image, or sampled frames of a video) gets a random codeword per payload length, drawn
from the seed and the input's name. Each model marks it at each strength (rounded to 8 bits); each
attack's params are drawn once per (input, attack, strength) from a generator seeded by those names
and the seed, and replayed on every model, so all models face the very same attack. Video frames go
through the models in batches, and each batch of consecutive frames is attacked as one clip, so a
video codec sees motion. A checkpoint's codeword is its Reed-Solomon code of random data bytes (what ``wmark embed``
writes, so that a search can decode it); a peer's, random bits. Images are marked as ``wmark embed`` marks them
(:meth:`wmark.api.Watermarker.embed_tensor`, rounded to 8 bits); video frames as ``wmark embed`` marks a video's
(:func:`mark_planes`: the residual added to the decoded 4:2:0 planes, the Y plane alone for a luma domain).

A row's ``psnr``/``ssim`` compare the marked 8-bit frame with the original (as RGB), ``bit_accuracy``/``word_ok``/
``p_value`` the bits read after the attack with the embedded codeword. ``search`` (:data:`wmark.sync.search.LEVELS`)
says how they were read: ``off``, as received; another level, as ``wmark extract --search LEVEL`` reads an image
(:func:`wmark.watermarker.search.first_detected` over :func:`~wmark.watermarker.search.image_candidates`), the bits
being those read under the pose the search ended on (one that detects; else the image as received), and ``p_value``
(binomial, on the bits matching the codeword) carrying the search's Bonferroni factor as ``extract``'s does
(:func:`wmark.watermarker.decision.corrected`; 1 with no search). Peers have no search: their rows say ``off``.
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
from wmark.interface.defaults import DEFAULT_FPR
from wmark.io.image import read_image, to_uint8
from wmark.io.media import expand_media, media_kind
from wmark.io.video import read_yuv, spread_frames
from wmark.io.yuv import YuvFrames
from wmark.perception.flip import sampled_flip_ratio
from wmark.stats import bit_accuracy, match_p_value, psnr, ssim
from wmark.sync.search import level as search_level
from wmark.watermarker.decision import corrected
from wmark.watermarker.search import first_detected, image_candidates

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
adds ±0.25 (25% of full range); the H.264 entries run on videos only. Frames are decoded as received unless
:func:`run` is given a ``search``."""

SEARCH = "off"
"""The default search of :func:`run` and ``wmark bench``: none, so that the grid (and a CI threshold) measures what
survives without one."""
COLUMNS = ("model", "strength", "attack", "search", "input", "frame", "psnr", "ssim", "flip", "flip_ratio",
           "bit_accuracy", "word_ok", "p_value", "embed_ms", "extract_ms")
MEANS = ("psnr", "ssim", "flip", "flip_ratio", "bit_accuracy", "word_ok", "embed_ms", "extract_ms")
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


def _codeword(seed: int, name: str, model) -> torch.Tensor:
    """The (L,) 0/1 codeword ``model`` marks input ``name`` with: a checkpoint's payload code (no key) of random data
    bytes, as ``wmark embed`` writes one and ``wmark extract`` decodes it; random bits for a peer (or a code with no
    room for data)."""
    generator = torch.Generator().manual_seed(stable_seed(seed, "codeword", name, model.bits))
    code = model.code() if isinstance(model, Watermarker) else None
    if code is None or not code.capacity_bytes:
        return torch.randint(0, 2, (model.bits,), generator=generator)
    data = torch.randint(0, 256, (code.capacity_bytes,), generator=generator)
    return code.encode(bytes(data.tolist())).long()


def _batches(path: Path, kind: str, frames: int | None, batch: int):
    """(frame indices, (B, 3, H, W) float RGB, a video batch's 4:2:0 planes or None) for an image or a video's
    (sampled) frames."""
    if kind == "image":
        yield [0], read_image(path).rgb, None
        return
    for indices, planes in read_yuv(path, batch=batch, select=spread_frames(path, frames)):
        yield indices, planes.rgb(), planes


def mark_planes(model: Watermarker, planes: YuvFrames, codeword: torch.Tensor,
                strength: float | None) -> torch.Tensor:
    """Video frames marked as :func:`wmark.watermarker.video.embed_video` marks a file's (one strength for every
    frame, the strength-1 residual of each frame from :meth:`~wmark.watermarker.embedder.Embedder.frame_residual`,
    added to the Y plane, or to all three planes for an RGB residual, in 8 bits), as float RGB (B, 3, H, W): what a
    reader of the marked planes sees before the encoder's loss."""
    embedder = model.embedder
    s = embedder.strength(strength)
    frames = planes.to(embedder.device)
    pipeline.check_size(frames.y.unsqueeze(1))
    residual = s * embedder.frame_residual(frames, codeword)
    marked = frames.add(residual)
    return marked.rgb().cpu()


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
        batch: int = 16, device: str = "auto", flip: bool = False, search: str = SEARCH) -> Result:
    """Benchmark ``models`` (from :func:`load_models`) on ``inputs``; a failing input is recorded and skipped.

    ``attacks`` None is :data:`DEFAULT_ATTACKS` (the H.264 entries on videos only). ``strengths``
    None runs each model at its card's strength. ``flip`` measures FLIP on every marked frame (see :data:`MEANS`).
    ``search``: how the checkpoints read each attacked image (see the module); a level other than ``off`` takes
    images only (a video's pose is found on frames read from a file, which an attacked clip in memory is not).
    """
    level = search_level(search)
    if frames is not None and frames < 1:
        raise WmarkError(f"--frames must be at least 1, got {frames}")
    if batch < 1:
        raise WmarkError(f"--batch must be at least 1, got {batch}")
    for strength in strengths or []:
        if strength is not None and not (math.isfinite(strength) and strength > 0):
            raise WmarkError(f"strength must be a positive number, got {strength}")
    specs = list(DEFAULT_ATTACKS if attacks is None else attacks)
    bench = _Bench(models, {spec: attack_lib.create(spec) for spec in specs}, list(strengths or [None]), seed, flip,
                   search)
    files = [(path, name.as_posix()) for path, name in expand_media(inputs)]
    if not files:
        raise WmarkError("no images or videos among the inputs")
    if search != "off":
        _refuse_videos(files, search)
    videos: list[str] = []
    start = time.perf_counter()
    for path, name in files:
        try:
            kind = media_kind(path)
            grid = [s for s in specs if kind == "video" or attacks is not None or s not in VIDEO_ATTACKS]
            if kind == "video":
                videos.append(name)
            bench.start(name)
            for indices, x, planes in _batches(path, kind, frames, batch):
                bench.batch(indices, x, planes, grid)
        except (WmarkError, attack_lib.AttackError) as exc:
            bench.errors.append({"input": str(path), "error": str(exc)})
    if not bench.rows:
        first = bench.errors[0]["error"] if bench.errors else "no rows"
        raise WmarkError(f"no input could be benchmarked: {first}")
    settings = {
        "inputs": [str(p) for p in inputs], "models": [m.name for m in models], "attacks": specs,
        "strengths": list(strengths or [None]), "frames": frames, "seed": seed, "batch": batch, "flip": flip,
        "search": search, **environment(device),
    }
    return Result(bench.rows, bench.errors, settings, round(time.perf_counter() - start, 3), videos)


def _refuse_videos(files: list[tuple[Path, str]], search: str) -> None:
    """A WmarkError naming the first video among ``files`` (unreadable files are left to the run's errors)."""
    for path, name in files:
        try:
            video = media_kind(path) == "video"
        except WmarkError:
            continue
        if video:
            raise WmarkError(f"--search {search} reads images only, and {name} is a video: bench reads video frames "
                             "as received (give --search off, or leave the videos out)")


class _Bench:
    """The rows and errors of a run, and the per-input state: generators, codewords, failed models."""

    def __init__(self, models: list, built: dict, requested: list[float | None], seed: int, flip: bool,
                 search: str = SEARCH) -> None:
        self.models, self.built, self.seed, self.flip = models, built, seed, flip
        self.level = search_level(search)
        self.searches = {m.name: search if isinstance(m, Watermarker) else "off" for m in models}  # peers: none
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

    def _mark(self, model, label, x: torch.Tensor, planes: YuvFrames | None) -> dict | None:
        """The marked 8-bit batch (a video's frames as :func:`mark_planes` marks them; a peer marks them as images) and
        its quality, or None when the model refuses the input."""
        codeword = _codeword(self.seed, self.name, model)
        strength = _resolved(model, label)
        try:
            if planes is not None and isinstance(model, Watermarker):
                y, ms = _timed(mark_planes, model, planes, codeword, strength)
            else:
                y, ms = _timed(model.embed_tensor, x, codeword, strength)
                y = pipeline.quantize(y)
        except WmarkError as exc:
            self.failed.add(model.name)
            self._error(input=self.name, model=model.name, error=str(exc))
            return None
        visibility = [sampled_flip_ratio(to_uint8(a), to_uint8(b)) if self.flip else (None, None) for a, b in zip(x, y)]
        return {"model": model, "marked": y, "codeword": codeword, "strength": strength, "embed_ms": ms / len(x),
                "psnr": psnr(y, x).tolist(), "ssim": ssim(y, x).tolist(),
                "flip": [v[0] for v in visibility], "flip_ratio": [v[1] for v in visibility]}

    def _searched(self, model: Watermarker, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The logits (L,) of one attacked image (1, 3, H, W) read as ``wmark extract`` reads it at this run's level,
        those of the pose the search ended on (the first that detects, at the default false-positive rate and no
        key; else the image as received), and the factor its p-value carries there."""
        x = x.to(model.device)
        reads: list[tuple] = []

        def decide(logits: torch.Tensor, hypotheses: int):
            found = model.decision.extract(logits, None, DEFAULT_FPR, hypotheses)
            reads.append((found, logits))
            return found

        found = first_detected(image_candidates(model.reader, x, self.level), model.reader.image_reads(x), decide,
                              model.reader.by_look(x))
        return next(logits for report, logits in reads if report is found), found.hypotheses

    def _logits(self, model, spec: str, attacked: torch.Tensor,
                clip: bool) -> tuple[tuple[torch.Tensor, list[int]], float]:
        """((logits (B, L), each frame's p-value factor), ms) for an attacked batch (a video's frames with ``clip``),
        read as received or, with a search, image by image."""
        def read() -> tuple[torch.Tensor, list[int]]:
            if self.searches[model.name] == "off":
                return model.frame_logits(attacked, video=clip), [1] * len(attacked)
            logits, factors = zip(*(self._searched(model, frame[None]) for frame in attacked))
            return torch.stack(logits), list(factors)

        try:
            return _timed(read)
        except WmarkError as exc:  # e.g. attacked below the decoder's minimum size
            self._error(input=self.name, model=model.name, attack=spec,
                        error=f"{exc} (counted as no signal: logits 0)")
            return (torch.zeros(len(attacked), model.bits), [1] * len(attacked)), 0.0

    def batch(self, indices: list[int], x: torch.Tensor, planes: YuvFrames | None, grid: list[str]) -> None:
        """All rows of one batch of frames (a video's with its 4:2:0 ``planes``): mark with each model and strength,
        attack, decode."""
        clip = planes is not None
        for label in self.labels:
            marked = [self._mark(m, label, x, planes) for m in self.models
                      if m.name not in self.failed and label in self.runs[m.name]]
            for spec in grid:
                attack = self.built[spec]
                params = attack.sample((1, *x.shape) if clip else x.shape, self._generator(spec, label))
                for entry in filter(None, marked):
                    model = entry["model"]
                    attacked = _attack(attack, entry["marked"], x, params, clip)
                    (logits, factors), ms = self._logits(model, spec, attacked, clip)
                    self._rows(entry, spec, indices, (logits > 0).to(torch.uint8), factors, ms / len(x))

    def _rows(self, entry: dict, spec: str, indices: list[int], decoded: torch.Tensor, factors: list[int],
              extract_ms: float) -> None:
        accuracy = bit_accuracy(decoded, entry["codeword"])
        p_values = [corrected(p, n) for p, n in zip(match_p_value(decoded, entry["codeword"]).tolist(), factors)]
        for i, frame in enumerate(indices):
            self.rows.append({
                "model": entry["model"].name, "strength": entry["strength"], "attack": spec,
                "search": self.searches[entry["model"].name], "input": self.name, "frame": frame,
                "psnr": entry["psnr"][i], "ssim": entry["ssim"][i], "flip": entry["flip"][i],
                "flip_ratio": entry["flip_ratio"][i], "bit_accuracy": float(accuracy[i]),
                "word_ok": bool(accuracy[i] == 1), "p_value": p_values[i],
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
    """Means per (model, strength, attack, search), the median p-value, speeds, errors and settings."""
    groups: dict[tuple, list[dict]] = {}
    for row in result.rows:
        groups.setdefault((row["model"], row["strength"], row["attack"], row["search"]), []).append(row)
    table = []
    for (model, strength, attack, search), rows in groups.items():
        entry = {"model": model, "strength": strength, "attack": attack, "search": search, "rows": len(rows)}
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
