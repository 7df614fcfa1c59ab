"""How visible each mark is: PSNR and NVIDIA FLIP for every committed checkpoint and the
invisible-watermark peers, on the validation photos, at each checkpoint's default strength.

    python benchmarks/visibility.py [--val ../shared/data/val] [--only NAME ...]

Each photo is marked with a random codeword (the checkpoint's card strength; the peers at their
defaults) and rounded to 8 bits, as a saved PNG holds it. Mean FLIP (:mod:`wmark.perception.flip`,
67 pixels per degree) is divided by the mean FLIP of a JPEG 75 re-save of the same photo. JPEG 90
and white luma noise at 40 dB PSNR give the scale two more reference points. Medians over photos.
Writes benchmarks/results/visibility.json; `visibility_markdown()` renders its table for the docs.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "visibility.json"
PEERS = ("imwatermark:dwtDct", "imwatermark:dwtDctSvd")


@functools.cache
def original(photo: Path) -> np.ndarray:
    return np.asarray(Image.open(photo).convert("RGB"))


@functools.cache
def jpeg_flip(photo: Path) -> float:
    """Mean FLIP of a JPEG 75 re-save of the photo: the unit of visibility."""
    from wmark.perception.flip import jpeg_resave, mean_flip

    return mean_flip(original(photo), jpeg_resave(original(photo)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def measure(photo: Path, marked: np.ndarray) -> dict:
    """PSNR, FLIP and FLIP relative to JPEG 75 of a marked 8-bit version of ``photo``."""
    from wmark.perception.flip import mean_flip

    flip = mean_flip(original(photo), marked)
    return {"photo": photo.name, "psnr": round(psnr(marked, original(photo)), 3), "flip": round(flip, 5),
            "flip_ratio": round(flip / jpeg_flip(photo), 4)}


def references(photo: Path) -> dict[str, np.ndarray]:
    """JPEG 90 and white luma noise at 40 dB: what a re-save and plain noise cost."""
    from wmark.perception.flip import jpeg_resave

    image = original(photo)
    noise = np.random.default_rng(0).normal(0, 255 * 10 ** (-40 / 20), image.shape[:2])[..., None]
    return {"JPEG 90 re-save": jpeg_resave(image, 90),
            "white luma noise, 40 dB": np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)}


def marker_images(name: str, photos: list[Path]):
    """(photo, marked uint8) for a checkpoint or peer, a random codeword a photo."""
    import wmark
    from wmark.bench import peers
    from wmark.io.image import from_uint8, to_uint8

    marker = peers.Peer(name) if peers.is_peer(name) else wmark.load(name, device="cpu")
    generator = torch.Generator().manual_seed(0)
    for photo in photos:
        codeword = torch.randint(0, 2, (marker.bits,), generator=generator)
        yield photo, to_uint8(marker.embed_tensor(from_uint8(original(photo))[None], codeword)[0])


def marked(x: torch.Tensor, residual: torch.Tensor, strength: float) -> np.ndarray:
    """The 8-bit marked image for a float image (1, 3, H, W), its residual and a strength."""
    from wmark.io.image import to_uint8

    return to_uint8((x + strength * residual).clamp(0, 1)[0])


def summarize(rows: list[dict], **extra) -> dict:
    return {**extra, "median_psnr": round(statistics.median(r["psnr"] for r in rows), 2),
            "min_psnr": round(min(r["psnr"] for r in rows), 2),
            "median_flip_ratio": round(statistics.median(r["flip_ratio"] for r in rows), 3),
            "max_flip_ratio": round(max(r["flip_ratio"] for r in rows), 3), "rows": rows}


def visibility_markdown(result: dict) -> str:
    """The table of visibility.json: one line per mark, least visible first."""
    lines = ["| mark | median PSNR | lowest PSNR | median FLIP ÷ JPEG 75's | highest |", "|---|---|---|---|---|"]
    for name, entry in sorted(result["marks"].items(), key=lambda item: item[1]["median_flip_ratio"]):
        lines.append(f"| {name} | {entry['median_psnr']:.1f} dB | {entry['min_psnr']:.1f} dB | "
                     f"{entry['median_flip_ratio']:.2f} | {entry['max_flip_ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from wmark import zoo
    from wmark.bench import peers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--only", nargs="*", help="checkpoints or peers to (re)measure; the others are kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    photos = sorted(args.val.glob("*.jpg"))
    result = json.loads(RESULT.read_text()) if RESULT.exists() and args.only else {"marks": {}}
    names = [card.name for card in zoo.list_cards()] + [p for p in PEERS if p in peers.available()]
    for name in args.only or ["references", *names]:
        if name == "references":
            by_kind: dict[str, list] = {}
            for photo in photos:
                for kind, image in references(photo).items():
                    by_kind.setdefault(kind, []).append(measure(photo, image))
            for kind, rows in by_kind.items():
                result["marks"][kind] = summarize(rows, kind="reference")
        else:
            rows = [measure(photo, marked) for photo, marked in marker_images(name, photos)]
            kind = "peer" if peers.is_peer(name) else "checkpoint"
            strength = None if kind == "peer" else zoo.find_card(name).strength
            result["marks"][name] = summarize(rows, kind=kind, strength=strength)
        print(name, {k: v for k, v in result["marks"].get(name, {}).items() if k != "rows"}, file=sys.stderr)
    result["photos"] = [p.name for p in photos]
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(visibility_markdown(result))


if __name__ == "__main__":
    main()
