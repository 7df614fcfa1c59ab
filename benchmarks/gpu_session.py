"""One prepared GPU session: environment, GPU tests, speed figures and a time-budgeted training run.

    python benchmarks/gpu_session.py [--out DIR] [--data DIR] [--val DIR] [--budget 480]
    python benchmarks/gpu_session.py --dry-run --out DIR    # every step on the CPU at toy sizes

Meant for the few tasks lent a GPU machine (one H200, 16 cores, 15 minutes of device time, bare):
it spends about 12 minutes of it, with nothing to set up. Everything goes under --out (default
$OUT), at most 8 files and one folder down, as the device tool returns them:

  gpu_session.json  the summary, rewritten after every step (a run cut short still leaves one)
  pytest.log        `pytest -m gpu`: tests/test_gpu.py (models, pipeline, video planes, bench, training on CUDA)
  train.log         the training run's own output (curriculum events, validations)
  NAME/card.json, NAME/model.safetensors, NAME/log.csv   the trained checkpoint (NAME: e.g. mbrs-128)
  session.log       written by the run command below (tee)

Each step runs in try/except (a failure lands in the JSON's "errors" and the next step runs) and
within its share of --budget seconds, so that with the installs the call ends inside the 10-minute per-call limit:

1. environment: torch, CUDA, the GPU, CPU cores, the carried packages; then `pytest -m gpu` (<= 150 s).
2. speed: `Watermarker.embed_tensor` and `.frame_logits` frames/s at 1920x1080, batches 1, 16 and 64,
   for the default model and --other (input on the device, results back on the CPU as the API hands
   them), then the benchmark engine (`wmark bench`: default attack grid, batch 16) on 16 frames of a
   720p camera pan (benchmarks/robustness.py's render_pan over wmark/samples/storm.jpg). Then the same
   on the machine's CPU cores, and the device/CPU ratios. A measurement repeats until its share of
   the time is spent; a batch too slow for its share is skipped and says so.
3. training: --family's recipe at native --size (128 px): by default HiDDeN, the one seed family without a
   checkpoint (issue 21: it does not converge on the CPU here), from fresh weights, its PSNR target --target-psnr;
   with the default checkpoint's family, its model (`plane`, if the family has one, scaled with the size) from
   the default checkpoint's weights wherever the shapes match (for MBRS every convolution; the linear message
   layers' weights start fresh). Through the
   any-resolution pipeline on --pipeline-size crops, with real codecs on --codec-workers CPU threads and
   data, differentiable attacks and the model on the GPU (bf16 autocast, channels-last). A probe of a
   few steps times one step; the step count is then set so that the whole curriculum (message, image
   ramp, attacks easy to hard) fits the time left, and the time budget (`--time`) stops it in any case.
   Exported with the strength calibrated on --val, then copied (card, weights, log) to NAME/.
   With `--domain CARD` (issue 40) it trains through that card's embedding domain instead (luma, JND, tiles,
   template; whole frames of --frame px, no --pipeline-size), its image loss steered to `--target-flip RATIO`
   when given, and a card of the same family and size is its `--init`: `--family mbrs --size 64 --domain
   mbrs-64-tiled --target-flip 0.55` goes on from the default's weights, strength and image-loss weight.
4. summary: the JSON; "files" lists what was written.

The data: the device gets the repository alone, so `benchmarks/gpu_wheels.sh` puts a small copy of
../shared/data (train at 512 px, val at 1024 px) into the ignored .gpu_data/, and the wheels the machine
lacks into .whl/. Calibrating mbrs-64 on val at 1024 px gives strength 1.5657 against 1.5644 at full size.

The device call (status: can_start_another true): run with timeout_s 600 (the per-call limit), carry [".whl", ".gpu_data"],
and this command, then give_back (docs/training.md, "GPU session protocol"). With less than 15 minutes of device
time left, add `--budget` (480 s) less the shortfall:

set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || ln -sfn ../checkpoints wmark/checkpoints; export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1; python3 benchmarks/gpu_session.py --out $OUT --data .gpu_data/train --val .gpu_data/val 2>&1 | tee $OUT/session.log

--dry-run runs every step on the CPU at toy sizes (a 256x144 frame, batches 1 and 2, the 20-frame
test clip, 3 training steps of batch 2 on the test photos) and writes the same JSON keys; the test
suite runs it (tests/test_gpu_session.py).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robustness import CLIP, ROOT, render_pan  # benchmarks/ is this script's folder
from wmark import load, zoo
from wmark.bench import engine as bench
from wmark.train.loop import Trainer, TrainConfig
from wmark.train.recipes import recipe_for

PHOTO = ROOT / "wmark" / "samples" / "storm.jpg"
FIXTURES = ROOT / "tests" / "fixtures"
PACKAGES = ("av", "kornia", "kornia_rs", "PyWavelets", "reedsolo", "flip-evaluator", "safetensors", "typer")
MAX_FILES = 8
# (frame width, height), image batches, bench frames, training batch, probe steps, step cap; real and toy.
REAL = {"frame": (1920, 1080), "batches": (1, 16, 64), "bench_frames": 16, "batch": 32, "probe": 10,
        "max_steps": None, "domain_frame": None}
TOY = {"frame": (256, 144), "batches": (1, 2), "bench_frames": 4, "batch": 2, "probe": 2, "max_steps": 3,
       "domain_frame": 128}
SHARES = {"tests": 150, "speed_images": 30, "reserve": 30}  # seconds: pytest limit, per side and model, at the end


class Session:
    """The summary and its file: every step records its status, seconds and result or error."""

    def __init__(self, out: Path, mode: str, budget: float) -> None:
        self.out, self.started, self.deadline = out, time.monotonic(), time.monotonic() + budget
        self.data = {"session": {"mode": mode, "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 "budget_s": budget, "wall_s": None, "files": []},
                     "environment": {}, "tests": {}, "speed": {}, "training": {}, "errors": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def step(self, name: str, fn, *args) -> None:
        begun = time.monotonic()
        print(f"== {name} ({self.left():.0f} s of the budget left)", flush=True)
        try:
            self.data[name] = {"status": "ok", **fn(*args)}
        except Exception as exc:  # noqa: BLE001 - one failing step must not cost the others
            traceback.print_exc()
            self.data[name] = {"status": "error", **self.data[name]}
            self.data["errors"][name] = f"{type(exc).__name__}: {exc}"
        self.data[name]["seconds"] = round(time.monotonic() - begun, 1)
        self.write()

    def write(self) -> None:
        files = sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file())
        self.data["session"].update(wall_s=round(time.monotonic() - self.started, 1), files=files)
        if len(files) > MAX_FILES or any(f.count("/") > 1 for f in files):
            self.data["errors"]["files"] = f"more than {MAX_FILES} files or a folder too deep: {files}"
        (self.out / "gpu_session.json").write_text(json.dumps(self.data, indent=1) + "\n")


def environment(device: str) -> dict:
    """Versions, the GPU and the CPU count."""
    info = {"device": device, "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": None,
            "gpu_memory_gib": None, "multiprocessors": None, "cudnn": None, "driver": None, "packages": {}}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info["packages"][name] = importlib.metadata.version(name)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
    return info


def gpu_tests(session: Session, limit: float, on_gpu: bool) -> dict:
    """`pytest -m gpu` in a subprocess, its output in pytest.log; an error unless it passes (and, ``on_gpu``,
    unless some tests ran rather than all being skipped for want of CUDA)."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider"]
    log_path = session.out / "pytest.log"
    with open(log_path, "w") as log:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {limit:.0f} s"
    lines = log_path.read_text().strip().splitlines()
    result = {"command": " ".join(command[1:]), "returncode": code, "summary": lines[-1] if lines else ""}
    if code != 0 or (on_gpu and " passed" not in f" {result['summary']}"):
        session.data["tests"] = result
        raise RuntimeError(f"pytest -m gpu: {code}, {result['summary']}")
    return result


def timed(job, share: float, repeats: int = 5) -> tuple[float, int]:
    """Median seconds of ``job`` after one warm-up, repeating until ``share`` seconds are spent (at most
    ``repeats``); the warm-up's time alone when nothing more fits."""
    begun = time.monotonic()
    job()
    warmup = time.monotonic() - begun
    times = []
    while len(times) < repeats and time.monotonic() - begun + (times[-1] if times else warmup) < share:
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return (statistics.median(times) if times else warmup), len(times)


def image_speed(name: str, side: str, device: str, frame: tuple[int, int], batches: tuple[int, ...],
                share: float) -> list[dict]:
    """Embed and extract frames/s of checkpoint ``name`` for each batch size, within ``share`` seconds:
    the input already on ``device``, the result back on the CPU (as the API returns it)."""
    marker = load(name, device=device)
    photo = np.array(Image.open(PHOTO).convert("RGB").resize(frame, Image.LANCZOS))
    one = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    codeword = marker.codeword(hex="a5" * marker.code().capacity_bytes)
    rows, end, per_frame = [], time.monotonic() + share, 0.0
    for i, batch in enumerate(batches):
        row = {"side": side, "device": str(marker.device), "model": name, "frame": f"{frame[0]}x{frame[1]}",
               "batch": batch, "embed_fps": None, "extract_fps": None, "repeats": 0}
        slot = (end - time.monotonic()) / (len(batches) - i)
        if per_frame * batch * 4 > slot:  # a warm-up and one timing each of embed and extract
            rows.append({**row, "skipped": f"too slow for its {slot:.0f} s share"})
            continue
        x = one.expand(batch, -1, -1, -1).contiguous().to(marker.device)
        marked = marker.embed_tensor(x, codeword).to(marker.device)
        embed_s, repeats = timed(lambda: marker.embed_tensor(x, codeword), slot / 2)
        extract_s, _ = timed(lambda: marker.frame_logits(marked), slot / 2)
        per_frame = (embed_s + extract_s) / batch
        rows.append({**row, "embed_fps": round(batch / embed_s, 2), "extract_fps": round(batch / extract_s, 2),
                     "repeats": repeats})
        del x, marked
    return rows


def bench_speed(clip: Path, side: str, device: str, frames: int) -> dict:
    """The benchmark engine (default grid, batch 16) on ``frames`` frames of ``clip``: frames/s end to end."""
    result = bench.run([clip], bench.load_models(None, device), frames=frames, batch=16, device=device)
    speed = bench.summarize(result)["speed"]
    return {"side": side, "device": device, "model": zoo.default_name(), "frames": speed["frames"],
            "wall_s": speed["wall_s"], "frames_per_s": round(speed["frames"] / speed["wall_s"], 3),
            "rows_per_s": speed["rows_per_s"], "models": speed["models"], "errors": len(result.errors)}


def speed(device: str, toy: bool, other: str, session: Session) -> dict:
    """Image frames/s per model and batch, and bench frames/s, on ``device`` and on the CPU."""
    size = TOY if toy else REAL
    names = [zoo.default_name(), other]
    result = {"frame": "x".join(map(str, size["frame"])), "batches": list(size["batches"]), "models": names,
              "images": [], "bench": [], "ratios": []}
    session.data["speed"] = result  # partial results stay if a later part fails
    with tempfile.TemporaryDirectory() as work:
        clip = FIXTURES / "clip.mp4"
        if not toy:
            clip = Path(work) / "pan.mp4"
            render_pan(PHOTO, clip)
        width, height = (160, 96) if toy else CLIP["size"]
        result["bench_clip"] = f"{clip.name}: {width}x{height}, {size['bench_frames']} frames benchmarked"
        for side, on in (("device", device), ("cpu", "cpu")):
            for name in names:
                result["images"] += image_speed(name, side, on, size["frame"], size["batches"], SHARES["speed_images"])
                session.write()
            result["bench"].append(bench_speed(clip, side, on, size["bench_frames"]))
            session.write()
    by_key = {}
    for row in result["images"]:
        by_key.setdefault((row["model"], row["batch"]), {})[row["side"]] = row
    for (name, batch), sides in by_key.items():
        fast, cpu = sides.get("device"), sides.get("cpu")
        if fast and cpu and fast["embed_fps"] and cpu["embed_fps"]:
            result["ratios"].append({"model": name, "batch": batch,
                                     "embed": round(fast["embed_fps"] / cpu["embed_fps"], 2),
                                     "extract": round(fast["extract_fps"] / cpu["extract_fps"], 2)})
    return result


def init_from(model: torch.nn.Module, card: zoo.Card) -> dict:
    """Load the tensors of ``card``'s weights whose names and shapes match ``model``'s; the rest stay fresh."""
    source, target = zoo.load_model(card).state_dict(), model.state_dict()
    matched = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    return {"from": card.name, "tensors": len(matched), "of": len(target), "fresh": sorted(set(target) - set(matched))}


def probe(cfg: TrainConfig, card: zoo.Card | None, steps: int) -> float:
    """Median seconds of a training step with every attack of the recipe in the pool (the heaviest stage)."""
    trainer = Trainer(cfg)
    if card is not None:
        init_from(trainer.model, card)
    trainer.begin(*trainer.todo[0])
    trainer.curriculum.stage, trainer.curriculum.stage_start = "attacks", -10**9
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    times = []
    for i in range(steps + 2):
        sync()
        start = time.perf_counter()
        trainer.step()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    trainer.codecs.close()
    return statistics.median(times)


def training(args, device: str, toy: bool, session: Session) -> dict:
    """A time-budgeted run of ``args.family``'s recipe at native size ``args.size``, exported to OUT/NAME: from the
    default checkpoint's weights where that is of the same family, else from fresh ones. With ``args.domain`` (a
    card), through that card's embedding domain on whole frames of ``args.frame`` px (issue 40), its image loss
    steered to ``args.target_flip`` when given; a card of the same family and size is the run's ``--init``, so it
    goes on from its weights, strength and image-loss weight."""
    size = TOY if toy else REAL
    domain = zoo.find_card(args.domain) if args.domain else None
    goes_on = domain is not None and domain.family == args.family and domain.kwargs["size"] == args.size
    default = zoo.find_card(zoo.default_name())
    card = default if default.family == args.family and not goes_on else None
    if goes_on:
        kwargs = dict(domain.kwargs)
    elif card is None:
        kwargs = {**recipe_for(args.family).model_kwargs, "size": args.size}
    else:
        kwargs = {**card.kwargs, "size": args.size}
        if "plane" in kwargs:
            kwargs["plane"] = kwargs["plane"] * args.size // card.kwargs["size"]
    name = f"{args.family}-{args.size}" + (f"-in-{domain.name}" if domain else "") + ("-flip" if args.target_flip else "")
    frame = (size["domain_frame"] or args.frame) if domain else None
    pipeline_size = None if domain else args.pipeline_size
    workers = args.codec_workers if args.codec_workers is not None else max(0, (os.cpu_count() or 1) - 2)
    result = {"name": name, "family": args.family, "kwargs": kwargs, "target_psnr": args.target_psnr,
              "target_flip": args.target_flip, "domain": domain.name if domain else None, "frame": frame,
              "batch": size["batch"], "pipeline_size": pipeline_size, "codec_workers": workers, "attacks": args.attack,
              "data": str(args.data), "val": str(args.val)}
    session.data["training"] = result
    with tempfile.TemporaryDirectory() as work, open(session.out / "train.log", "w") as log, \
            contextlib.redirect_stderr(log):
        def config(out: str, steps: int, budget: float | None) -> TrainConfig:
            return TrainConfig(family=args.family, data=str(args.data), val=str(args.val), out=out, device=device,
                               batch=size["batch"], steps=steps, time_budget=budget, cache=f"{work}/cache",
                               codec_workers=workers, pipeline_size=pipeline_size, model_kwargs=kwargs,
                               attacks=args.attack, val_every=max(1, steps // 4), log_every=max(1, steps // 100),
                               target_psnr=args.target_psnr, target_flip=args.target_flip,
                               init=args.domain if goes_on else None, domain=args.domain,
                               **({"frame": frame} if domain else {}))

        step_s = probe(config(f"{work}/probe", 10**6, None), card, size["probe"])
        budget = session.left() - SHARES["reserve"]
        steps = max(1, int(0.85 * (budget - 20) / step_s))  # validations and the export take the rest
        if size["max_steps"] is not None:
            steps = min(steps, size["max_steps"])
        result.update(probe={"step_s": round(step_s, 4), "samples_per_s": round(size["batch"] / step_s, 1)},
                      steps_planned=steps, time_budget_s=round(budget, 1))
        session.write()
        trainer = Trainer(config(f"{work}/{name}", steps, budget))
        if card is not None:
            result["init"] = init_from(trainer.model, card)
        elif goes_on:  # the trainer loaded the domain's own card: every tensor
            tensors = len(trainer.model.state_dict())
            result["init"] = {"from": domain.name, "tensors": tensors, "of": tensors}
        else:
            result["init"] = None
        trained = trainer.run()
        card_path = trained.path / zoo.CARD
        data = json.loads(card_path.read_text())
        if card is not None:
            data["training"]["init"] = f"{card.name} ({result['init']['tensors']} of {result['init']['of']} tensors)"
        data["training"]["data"] = f"{args.data} ({len(trainer.cache.files)} images)"
        card_path.write_text(json.dumps(data, indent=2) + "\n")
        target = session.out / name
        target.mkdir(exist_ok=True)
        for file in (zoo.CARD, zoo.WEIGHTS, "log.csv"):
            shutil.copy(trained.path / file, target / file)
    marker = load(str(target), device=device)  # the exported checkpoint loads (sha256, strict)
    done = data["training"]
    return {**result, "images": len(trainer.cache.files), "steps_done": done["steps"], "seconds": done["seconds"],
            "stopped": done["stopped"], "curriculum": done["curriculum"], "strength": data["strength"],
            "bits": marker.bits, "validation": data["metrics"]["validation"],
            "files": [f"{name}/{file}" for file in (zoo.CARD, zoo.WEIGHTS, "log.csv")]}


def toy_data(folder: Path) -> tuple[Path, Path]:
    """Training and validation folders made of the repository's own photos (the dry run needs no ../shared)."""
    train, val = folder / "train", folder / "val"
    for sub in (train, val):
        sub.mkdir(parents=True)
    shutil.copy(FIXTURES / "photo.jpg", train / "photo.jpg")
    shutil.copy(PHOTO, train / "storm.jpg")
    shutil.copy(FIXTURES / "photo.jpg", val / "photo.jpg")
    return train, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="default: $OUT")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU at toy sizes")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole session (the device allows 600 s a call, installs included)")
    gpu_data = ROOT / ".gpu_data"
    shared = ROOT.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=gpu_data / "train" if gpu_data.is_dir() else shared / "train")
    parser.add_argument("--val", type=Path, default=gpu_data / "val" if gpu_data.is_dir() else shared / "val")
    parser.add_argument("--other", default="cin-64", help="the second checkpoint timed beside the default")
    parser.add_argument("--family", default="hidden", help="the family trained (default: HiDDeN, issue 21)")
    parser.add_argument("--target-psnr", type=float, default=37.0,
                        help="the training's PSNR target (HiDDeN's bar is a mean of 36 dB)")
    parser.add_argument("--size", type=int, default=128, help="native size of the trained model")
    parser.add_argument("--pipeline-size", type=int, default=256)
    parser.add_argument("--codec-workers", type=int, help="default: CPU cores less 2")
    parser.add_argument("--attack", action="append", help="replace the recipe's attacks (repeatable)")
    parser.add_argument("--domain", help="train through this card's embedding domain (e.g. mbrs-64-tiled, issue 40)")
    parser.add_argument("--frame", type=int, default=512, help="with --domain: side of the frames marked")
    parser.add_argument("--target-flip", type=float, help="steer the image loss to this FLIP ratio to a JPEG 75 re-save's")
    args = parser.parse_args()
    if args.out is None:
        parser.error("give --out or set $OUT")
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry_run else "cuda"
    session = Session(args.out, "dry-run" if args.dry_run else "gpu", args.budget)
    with tempfile.TemporaryDirectory() as tmp:
        if args.dry_run:  # one torch thread: on a small shared CPU more threads oversubscribe it (speed.py)
            torch.set_num_threads(1)
            args.data, args.val = toy_data(Path(tmp))
            args.codec_workers = 2 if args.codec_workers is None else args.codec_workers
        session.step("environment", environment, device)
        session.step("tests", gpu_tests, session, min(SHARES["tests"], max(30.0, session.left() / 4)),
                     not args.dry_run)
        session.step("speed", speed, device, args.dry_run, args.other, session)
        session.step("training", training, args, device, args.dry_run, session)
    session.write()
    print(json.dumps(session.data, indent=1))
    print(f"gpu session ({session.data['session']['mode']}): {session.data['session']['wall_s']} s, "
          f"errors: {session.data['errors'] or 'none'}")


if __name__ == "__main__":
    main()
