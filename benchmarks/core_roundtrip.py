"""Round trip, quality, false positives and speed of a checkpoint on real photos.

    python benchmarks/core_roundtrip.py --val ../shared/data/val --unmarked ../shared/data/train

Writes benchmarks/results/core_roundtrip_<model>.json. Each validation photo (1–4 MP, never trained
on) is marked with a random message at the card's default strength and saved as PNG; the message is
extracted from the file, and again after Pillow re-saves it as JPEG 90 and 75. Unmarked photos give
the false-positive count. Timings are medians at 1920×1080 on this machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import wmark
from wmark.io.image import from_uint8
from wmark.stats import bit_accuracy
from wmark.train.data import image_files

RESULTS = Path(__file__).parent / "results"


def _random_message(generator: torch.Generator, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[int(i)] for i in torch.randint(len(alphabet), (length,), generator=generator))


def _bits(text: str) -> torch.Tensor:
    return torch.tensor([int(c) for c in text])


def round_trips(marker, photos: list[Path], work: Path) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for photo in photos:
        message = _random_message(generator, marker.code().capacity_bytes)
        marked = work / f"{photo.stem}.png"
        report = marker.embed_file(photo, marked, message=message)
        width, height = Image.open(photo).size
        row = {"photo": photo.name, "megapixels": round(width * height / 1e6, 2),
               "psnr": report.psnr, "ssim": report.ssim, "message": message}
        for label, quality in (("png", None), ("jpeg90", 90), ("jpeg75", 75)):
            target = marked
            if quality is not None:
                target = work / f"{photo.stem}_q{quality}.jpg"
                Image.open(marked).save(target, quality=quality)
            found = marker.extract(target)
            row[label] = {"exact": found.message == message, "detected": found.detected, "p_value": found.p_value,
                          "bit_accuracy": float(bit_accuracy(_bits(found.codeword), _bits(report.codeword)))}
        rows.append(row)
    return rows


def false_positives(marker, photos: list[Path]) -> dict:
    detected = [p.name for p in photos if marker.extract(p).detected]
    return {"photos": len(photos), "detected": len(detected), "which": detected}


def timings(marker, photo: Path, repeats: int) -> dict:
    x = from_uint8(np.asarray(Image.open(photo).convert("RGB").resize((1920, 1080))))[None]
    codeword = marker.codeword("a")
    embed, extract = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        marked = marker.embed_tensor(x, codeword)
        embed.append(time.perf_counter() - start)
        start = time.perf_counter()
        marker.logits(marked)
        extract.append(time.perf_counter() - start)
    return {"resolution": "1920x1080", "repeats": repeats, "embed_s_median": round(statistics.median(embed), 4),
            "extract_s_median": round(statistics.median(extract), 4), "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--val", default="../shared/data/val")
    parser.add_argument("--unmarked", default="../shared/data/train")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    marker = wmark.load(args.model, device="cpu")
    photos = image_files(args.val)
    with tempfile.TemporaryDirectory() as work:
        rows = round_trips(marker, photos, Path(work))
    summary = {
        "model": marker.name,
        "strength": marker.card.strength,
        "psnr_median": statistics.median(r["psnr"] for r in rows),
        "psnr_min": min(r["psnr"] for r in rows),
        **{f"exact_{k}": sum(r[k]["exact"] for r in rows) / len(rows) for k in ("png", "jpeg90", "jpeg75")},
        **{f"bit_accuracy_{k}": statistics.mean(r[k]["bit_accuracy"] for r in rows) for k in ("png", "jpeg90", "jpeg75")},
    }
    result = {"summary": summary, "false_positives": false_positives(marker, image_files(args.unmarked)),
              "timing": timings(marker, photos[0], args.repeats), "photos": rows}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"core_roundtrip_{marker.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"summary": summary, "false_positives": result["false_positives"], "timing": result["timing"]}, indent=2))


if __name__ == "__main__":
    main()
