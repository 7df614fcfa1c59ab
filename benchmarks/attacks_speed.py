"""Throughput of every registered attack on this CPU, and how close each differentiable
proxy comes to the real codec it imitates.

    python benchmarks/attacks_speed.py [--val ../shared/data/val] [--repeats 3]

Writes benchmarks/results/attacks_speed.json. Photos from `--val` (else
tests/fixtures/photo.jpg) are halved when large and cut into 256x256 crops panning
1 px right and 0.5 px down a frame from the centre. Speed: median seconds over
`--repeats` timed calls (after one warm-up), fresh params each call, on a batch of
32 crops (images/s); real video codecs get 2 clips of 16 frames (frames/s).
Proxies against the real codec they imitate:
  - JPEG proxies on one crop per photo, against Pillow's JPEG at the same quality
    (jpeg_mask and jpeg_drop against quality 50);
  - h264_proxy on one 8-frame clip per photo, against libx264 (preset medium) at
    crf 18-35: PSNR(real, x), PSNR(proxy, x) (the calibration target) and
    PSNR(proxy, real).
PSNR(real, x) is also the do-nothing baseline for PSNR(proxy, real): a proxy that
beats it lands nearer the real output than the untouched input does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import attacks  # noqa: E402
from attacks.h264_proxy import crf_to_qp  # noqa: E402
from attacks.video import VideoCodec  # noqa: E402

RESULTS = Path(__file__).parent / "results"
FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "photo.jpg"
SIZE = 256


def throughput(name: str, photos: list[torch.Tensor], repeats: int) -> dict:
    attack = attacks.create(name)
    video = isinstance(attack, VideoCodec)
    if video:
        x = torch.stack([clip(photos[i % len(photos)], 16) for i in range(2)])
    else:
        per_photo = -(-32 // len(photos))
        x = torch.cat([clip(p, per_photo) for p in photos])[:32]
    cover = x.roll(1, dims=0) if attack.needs_cover else None
    frames = int(np.prod(x.shape[:-3]))
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            start = time.perf_counter()
            attack(x, cover=cover)
            if i:
                times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "attack": name, "grad": attack.grad, "input": "x".join(map(str, x.shape)),
        "unit": "frames/s" if video else "images/s", "throughput": round(frames / seconds, 1),
        "median_s": round(seconds, 6),
    }


def load_photos(folder: Path | None) -> tuple[list[str], list[torch.Tensor]]:
    """Photos as (3, H, W) floats, halved when large; the fixture when no folder is given."""
    paths = sorted(folder.glob("*.jpg")) if folder is not None and folder.is_dir() else []
    paths = paths or [FIXTURE]
    out = []
    for path in paths:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if min(im.size) >= 2 * (SIZE + 16):
                im = im.resize((im.width // 2, im.height // 2), Image.BICUBIC)
            out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255)
    return [p.name for p in paths], out


def clip(photo: torch.Tensor, frames: int) -> torch.Tensor:
    """(T, 3, 256, 256): a centre crop panning 1 px right and 0.5 px down a frame."""
    top, left = (photo.shape[1] - SIZE) // 2, (photo.shape[2] - SIZE) // 2
    return torch.stack([
        photo[:, top + t // 2 : top + t // 2 + SIZE, left + t : left + t + SIZE] for t in range(frames)
    ])


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images of the per-image PSNR in dB."""
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return round(float((10 * torch.log10(1 / mse)).mean()), 2)


def jpeg_table(x: torch.Tensor) -> list[dict]:
    rows = []
    cases = [(f"{p}:quality={q}", q) for p in ("jpeg_diff", "jpeg_cubic") for q in (30, 50, 75, 90)]
    cases += [("jpeg_mask", 50), ("jpeg_drop", 50)]
    for spec, quality in cases:
        proxy = attacks.create(spec)
        y = proxy(x, proxy.sample(x.shape, torch.Generator().manual_seed(0)))
        real = attacks.create("jpeg", quality=quality)(x)
        rows.append({"proxy": spec, "real": f"jpeg:quality={quality}", "proxy_vs_real": psnr(y, real),
                     "real_vs_x": psnr(real, x), "proxy_vs_x": psnr(y, x)})
    return rows


def h264_table(clips: torch.Tensor) -> list[dict]:
    flat = clips.flatten(0, 1)
    rows = []
    for crf in (18, 21, 23, 26, 28, 31, 35):
        real = attacks.create("h264", crf=crf)(clips).flatten(0, 1)
        proxy = attacks.create("h264_proxy", crf=crf)(flat)
        rows.append({"crf": crf, "qp": round(float(crf_to_qp(torch.tensor(crf))), 2), "real_vs_x": psnr(real, flat),
                     "proxy_vs_x": psnr(proxy, flat), "proxy_vs_real": psnr(proxy, real)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=Path(__file__).parents[2] / "shared" / "data" / "val")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()

    names, photos = load_photos(args.val)
    speed = [throughput(name, photos, args.repeats) for name in attacks.names()]
    crops = torch.stack([clip(p, 1)[0] for p in photos])
    proxies = {"photos": names, "jpeg": jpeg_table(crops)}
    if "h264" in attacks.names():
        proxies["h264"] = h264_table(torch.stack([clip(p, 8) for p in photos]))

    result = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "speed": sorted(speed, key=lambda r: -r["throughput"]),
        "proxy_psnr": proxies,
        "runtime_s": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "attacks_speed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["speed"]:
        print(f"{row['attack']:<12} {row['grad']:<7} {row['throughput']:>10.1f} {row['unit']}")
    for row in proxies["jpeg"] + proxies.get("h264", []):
        print({k: v for k, v in row.items()})
    print(f"wrote {out} in {result['runtime_s']} s")


if __name__ == "__main__":
    main()
