"""The family issues' acceptance measurement, done the way a user would, outside wmark's own code.

    python benchmarks/thresholds.py -m dwtcnn-32 [--val ../shared/data/val] [--strength S]

For each validation photo (2-4 MP, never trained on): a random raw codeword of the model's bit
count goes in with `wmark embed --codeword` (PNG out), the saved file is attacked with Pillow alone
(JPEG 75 and 50 with 4:2:0, a 0.5x resize and back, Gaussian blur sigma 1.5, brightness x1.3, a perspective
warp that moves each corner by up to 5 % of the side in x and y, as StegaStamp defines it),
numpy alone (Gaussian noise sigma 0.02) or PyAV alone (one frame through libx264 at CRF 28), and `wmark extract --json` reads the bits back.
PSNR is computed on the 8-bit files. The decoder's mean |logit| on the marked file and on the
unmarked photo is recorded too. Means are given over all photos and over those of 1-4 MP (the
issues' definition of a test photo). Writes benchmarks/results/thresholds_<model>[_s<strength>][_<folder>].json
with per-photo rows and the means; the folder's name is added for any set but ../shared/data/val
(`benchmarks/unseen_photos.py` builds one of photos no checkpoint saw).
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAL = ROOT.parent / "shared" / "data" / "val"
MEGAPIXELS = (1.0, 4.0)  # the family issues' test images: photos of 1-4 MP (grid-l.jpg, 4.19 MP artwork, is outside)
ATTACKS = {
    "none": lambda im: im,
    "jpeg75": lambda im: _jpeg(im, 75),
    "jpeg50": lambda im: _jpeg(im, 50),
    "resize0.5": lambda im: im.resize((im.width // 2, im.height // 2), Image.BICUBIC).resize(im.size, Image.BICUBIC),
    "blur1.5": lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
    "brightness1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "perspective5": lambda im: _perspective(im, 0.05),
    "noise0.02": lambda im: _gaussian_noise(im, 0.02),
    "h264crf28": lambda im: _h264(im, 28),
}


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    path = Path(tempfile.mkstemp(suffix=".jpg")[1])
    image.save(path, quality=quality, subsampling=2)
    attacked = Image.open(path).convert("RGB")
    path.unlink()
    return attacked


def thumbnail(long_side: int):
    """An attack: a downscale of the marked photo to ``long_side`` px on its long side (Lanczos), then JPEG 75
    (the invisible-default issue's thumbnails; not in this script's own list)."""
    def attack(image: Image.Image) -> Image.Image:
        scale = long_side / max(image.size)
        return _jpeg(image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS), 75)
    return attack


def _gaussian_noise(image: Image.Image, sigma: float) -> Image.Image:
    """Gaussian noise of standard deviation ``sigma`` (on a 0-1 scale) on every pixel, rounded to 8 bits."""
    generator = np.random.default_rng(sum(image.size))  # the same noise for a photo on every run
    noisy = np.asarray(image, dtype=np.float64) + generator.normal(0, sigma * 255, (image.height, image.width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def _perspective(image: Image.Image, shift: float) -> Image.Image:
    """Pillow's perspective transform with each corner moved by up to ``shift`` of the side in x and y (uniform,
    the same draw for a photo on every run); the uncovered border is black."""
    generator = np.random.default_rng(sum(image.size) + 1)
    w, h = image.size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    moved = corners + generator.uniform(-shift, shift, (4, 2)) * [w, h]
    # Pillow maps each output pixel (x, y) to the input ((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (...)):
    # solve for the eight coefficients that send the moved corners back to the original ones.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(moved, corners):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coefficients = np.linalg.solve(np.array(rows), np.array(rhs))
    return image.transform(image.size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BICUBIC)


def _h264(image: Image.Image, crf: int) -> Image.Image:
    """One frame through libx264 (PyAV, yuv420p, CRF ``crf``) and back; odd sides are padded, then cropped.

    Written here rather than taken from ``attacks/``, like the Pillow attacks: the acceptance check does
    not lean on the code it checks.
    """
    import av

    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "frame.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=1, options={"crf": str(crf)})
            stream.width, stream.height, stream.pix_fmt = padded.shape[1], padded.shape[0], "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return Image.fromarray(frame[:height, :width])


@functools.cache
def _loaded(model: str):
    import wmark

    return wmark.load(model, device="cpu")


def _decoder_output(model: str, path: Path) -> float:
    """Mean |logit| the model's decoder gives for the image at ``path`` (near 0 when unmarked)."""
    return float(_loaded(model).logits(str(path)).abs().mean())


def _wmark(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "wmark", *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def _means(rows: list[dict]) -> dict:
    means = {key: round(statistics.mean(r[key] for r in rows), 4)
             for key in ["psnr", *ATTACKS, "output_marked", "output_unmarked"]}
    means["median_psnr"] = round(statistics.median(r["psnr"] for r in rows), 3)
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--val", type=Path, default=DEFAULT_VAL)
    parser.add_argument("--strength", type=float)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bits = next(m["bits"] for m in _wmark("models")["models"] if m["name"] == args.model)
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for photo in sorted(args.val.glob("*.jpg")):
            codeword = "".join(map(str, rng.integers(0, 2, bits)))
            marked = Path(work) / f"{photo.stem}.png"
            options = ["--strength", str(args.strength)] if args.strength else []
            _wmark("embed", str(photo), str(marked), "-m", args.model, "--codeword", codeword, *options)
            original, stored = Image.open(photo).convert("RGB"), Image.open(marked).convert("RGB")
            row = {"photo": photo.name, "megapixels": round(original.width * original.height / 1e6, 2),
                   "psnr": round(_psnr(stored, original), 3),
                   "output_marked": round(_decoder_output(args.model, marked), 4),
                   "output_unmarked": round(_decoder_output(args.model, photo), 4)}
            for name, attack in ATTACKS.items():
                attacked = Path(work) / f"{photo.stem}-{name}.png"
                attack(stored).save(attacked)
                found = _wmark("extract", str(attacked), "-m", args.model)["codeword"]
                row[name] = sum(a == b for a, b in zip(found, codeword)) / bits
            rows.append(row)
            print(row, file=sys.stderr)
    in_scope = [r for r in rows if MEGAPIXELS[0] <= r["megapixels"] <= MEGAPIXELS[1]]
    result = {"model": args.model, "bits": bits, "strength": args.strength, "photo_set": args.val.name,
              "photos": len(rows), "means": _means(rows),
              "photos_1_to_4_mp": len(in_scope), "means_1_to_4_mp": _means(in_scope), "rows": rows}
    suffix = f"_s{args.strength:g}" if args.strength else ""
    if args.val.resolve() != DEFAULT_VAL.resolve():
        suffix += f"_{args.val.name}"
    out = ROOT / "benchmarks" / "results" / f"thresholds_{args.model}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"all": result["means"], "1-4 MP": result["means_1_to_4_mp"]}))


if __name__ == "__main__":
    main()
