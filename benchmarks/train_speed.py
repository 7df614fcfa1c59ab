"""Training speed: samples per second for every registered family, at its recipe's defaults.

    python benchmarks/train_speed.py [DATA] [--device cpu|cuda] [--steps 20] [--warmup 3] [--threads N]

DATA defaults to ../shared/data/train. Each family trains at its recipe's model settings and the
default batch (16): the median time of --steps optimisation steps after --warmup, once in the
curriculum's first phase (no attack) and once with every recipe attack in the pool (one drawn per
step). Real codecs as the loop applies them (jpeg, h264 on a 16x3x64x64 batch) are timed inline
and on the codec worker pool (--codec-workers), alternating. The load average is recorded: other
processes on the CPU slow these figures down.
Images are decoded once into a disk cache (timed), which the later runs memory-map (timed).
Results go to benchmarks/results/train_speed.json under the device's key, so a CPU and a CUDA run
keep both figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import attacks  # noqa: E402
from attacks_speed import cpu_model  # noqa: E402  (benchmarks/ is this script's folder)
from wmark import zoo  # noqa: E402
from wmark.device import resolve_device  # noqa: E402
from wmark.train.codec_pool import CodecPool  # noqa: E402
from wmark.train.data import ImageCache  # noqa: E402
from wmark.train.loop import TrainConfig, Trainer  # noqa: E402
from wmark.train.recipes import recipe_for  # noqa: E402

RESULT = Path(__file__).parent / "results" / "train_speed.json"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
CODECS = ("jpeg:quality=50-90", "h264:crf=18-30")


def samples_per_s(cfg: TrainConfig, steps: int, warmup: int, all_attacks: bool) -> dict:
    """Median step time of a Trainer on ``cfg``; ``all_attacks`` puts every attack in the pool at once."""
    trainer = Trainer(cfg)
    trainer.begin(*trainer.todo[0])
    if all_attacks:
        trainer.curriculum.stage, trainer.curriculum.stage_start = "attacks", -10**9
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + steps):
        sync()
        start = time.perf_counter()
        trainer.step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    trainer.codecs.close()
    median = statistics.median(times)
    return {"median_step_s": round(median, 4), "samples_per_s": round(cfg.batch / median, 1)}


def codec_seconds(spec: str, workers: int, batch: int, size: int, repeats: int) -> list[float]:
    """Seconds per call of a real-codec attack on a training batch, inline or on a CodecPool."""
    attack, generator = attacks.create(spec), torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=generator).requires_grad_()
    pool, times = CodecPool(workers), []
    for _ in range(repeats):
        params = attack.sample(x.shape, generator)
        start = time.perf_counter()
        pool(attack, x, params, x)
        times.append(time.perf_counter() - start)
    pool.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DATA)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ImageCache(args.data, disk=tmp)
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        cache = ImageCache(args.data, disk=tmp)
        cache_load_s = time.perf_counter() - start

        def config(family: str, **options) -> TrainConfig:
            return TrainConfig(family=family, data=str(args.data), out=str(Path(tmp) / family), device=str(device),
                               cache=tmp, steps=10**6, log_every=10**6, **options)

        families = {}
        for family in zoo.families():
            cfg = config(family)
            families[family] = {
                "size": recipe_for(family).model_kwargs["size"],
                "batch": cfg.batch,
                "no_attack": samples_per_s(cfg, args.steps, args.warmup, all_attacks=False),
                "recipe_attacks": samples_per_s(cfg, args.steps, args.warmup, all_attacks=True),
            }
            print(family, families[family], file=sys.stderr)
    codec_pool = []
    for spec in CODECS:
        timings = {workers: [] for workers in (0, os.cpu_count())}
        for _ in range(3):  # alternate: the CPU may be shared
            for workers, runs in timings.items():
                runs += codec_seconds(spec, workers, 16, 64, repeats=10)
        for workers, runs in timings.items():
            codec_pool.append({"attack": spec, "batch": "16x3x64x64", "codec_workers": workers,
                               "median_ms": round(statistics.median(runs) * 1000, 2)})
            print(codec_pool[-1], file=sys.stderr)
    entry = {
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
            "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "data": {"folder": os.path.relpath(args.data, Path(__file__).resolve().parents[1]), "images": len(cache.files),
                 "decode_s": round(decode_s, 2), "cache_load_s": round(cache_load_s, 3)},
        "steps": args.steps,
        "warmup": args.warmup,
        "families": families,
        "codec_pool": codec_pool,
        "runtime_s": round(time.perf_counter() - began, 1),
    }
    results = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
    results[device.type] = entry
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
