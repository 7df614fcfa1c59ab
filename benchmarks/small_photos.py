"""Small photos: the default model and invisible-watermark's dwtDct and dwtDctSvd, side by side, on photos of
768x512 and about 1 MP after the edits people make to them (issue 39).

    python benchmarks/small_photos.py [--val ../shared/data/val] [--unseen DIR] [--photos N]
        [--sizes 768x512,1mp] [--edits none,jpeg50,...] [--out benchmarks/results/small_photos.json] [--resume]
        [--model NAME [--flip RATIO]]

Photos. The validation photos (never trained on) and, with ``--unseen``, a folder of photos no checkpoint saw
(``benchmarks/unseen_photos.py`` makes one). Each is built at two sizes in a temporary folder, saved as JPEG 95 as
people receive photos: ``768x512`` exactly (centre crop to 3:2, then Lanczos; a portrait photo becomes 512x768)
and ``1mp``, about 1.0e6 px with the photo's aspect kept (Lanczos).

Marks. The default checkpoint marks each built photo as a user would, through the public API:
``wmark.load().embed_file(photo, png, message=MESSAGE)`` at the card's strength, and ``extract(path)`` at the
default search reads it; a read is exact when it detects the mark and the message is MESSAGE, and its bit
accuracy is the share of the embed report's codeword bits that the extraction's codeword matches. dwtDct and
dwtDctSvd mark 64 random bits (seeded per photo, size and method) through :class:`wmark.bench.peers.Peer`, saved
as PNG; a read is exact when every bit is right. A read's seconds time reading the file and decoding it (for the
default, the whole ``extract`` call), per photo. PSNR and FLIP (as a ratio to a JPEG 75 re-save's,
:func:`wmark.perception.flip.flip_vs_jpeg`) compare each marked file with the built photo. The default model also
reads the unmarked built photos: a detection there is a false one. With ``--flip RATIO``, the model marks at the
strength whose median FLIP ratio over the built photos of every size, as the benchmark measures it (whole
pictures), is RATIO (:func:`wmark.perception.calibrate.strength_for_flip`) in place of its card's: a candidate
compared with the default at the default's measured visibility.

Edits, made with Pillow and numpy on the marked file and saved as the file a user would have (JPEG and WebP at
the stated quality, else PNG); random placements and noise are drawn from a seed of the photo, size and edit, so
every method faces the same edit on every run: :data:`EDITS`. :data:`MUST_READ` are the issue's edits that must
read on every photo.

torch runs on one thread, set at start: on this shared 2-core machine, a CLI read took about 4.8x less time on
one thread than at torch's default, whose threads oversubscribe the cores. A full run is long on a CPU: per-photo
records go to ``<out>.partial.json`` as each photo is done, ``--resume`` skips the photos it holds, and the time
left is estimated after each photo. Writes ``--out`` (default benchmarks/results/small_photos.json) with the
settings, the machine, the summary and the per-photo records, and prints the docs' table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

import wmark
from wmark import pipeline
from wmark.bench.peers import BITS, Peer
from wmark.io.image import from_uint8, to_uint8
from wmark.perception.calibrate import strength_for_flip
from wmark.perception.flip import flip_vs_jpeg
from wmark.watermarker.embedder import message
from wmark.stats import psnr
from wmark.train.data import image_files
from readme_tables import small_photos_markdown  # a sibling script

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "small_photos.json"
MESSAGE = "wmark-039"  # 9 bytes
PEERS = ("imwatermark:dwtDct", "imwatermark:dwtDctSvd")
READ_REFERENCE = "imwatermark:dwtDctSvd"
"""The peer whose read time the issue's read-time bars are ratios to (at most 1x unedited at 1080p, 5x edited)."""
PHOTO_QUALITY = 95
ONE_MEGAPIXEL = 1.0e6
GREY = (128, 128, 128)


def fixed_size(image: Image.Image) -> Image.Image:
    """768x512 exactly (512x768 for a portrait photo): centre crop to 3:2, then Lanczos."""
    size = (512, 768) if image.height > image.width else (768, 512)
    return ImageOps.fit(image, size, Image.LANCZOS)


def one_megapixel(image: Image.Image) -> Image.Image:
    """About 1.0e6 px with the aspect kept (Lanczos)."""
    scale = (ONE_MEGAPIXEL / (image.width * image.height)) ** 0.5
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


SIZES = {"768x512": fixed_size, "1mp": one_megapixel}


def _same(image: Image.Image, rng: random.Random) -> Image.Image:
    return image


def _scaled(factor: float):
    return lambda image, rng: image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)


def _long_side(pixels: int):
    return lambda image, rng: _scaled(pixels / max(image.size))(image, rng)


def _box(image: Image.Image, area: float, rng: random.Random) -> tuple[int, int, int, int]:
    """A box of ``area`` of the picture with its aspect, at a place drawn from ``rng``."""
    width, height = round(image.width * area ** 0.5), round(image.height * area ** 0.5)
    left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    return left, top, left + width, top + height


def _crop(area: float):
    return lambda image, rng: image.crop(_box(image, area, rng))


def _rotate(degrees: float):
    """A turn by ``degrees`` (bicubic) at the same size: black corners, as ``Image.rotate`` leaves them."""
    return lambda image, rng: image.rotate(degrees, resample=Image.BICUBIC)


def _enhance(kind, factor: float):
    return lambda image, rng: kind(image).enhance(factor)


def _noise(sigma: float):
    """Gaussian noise of standard deviation ``sigma`` (of 255) on every value, rounded to 8 bits."""
    def edit(image: Image.Image, rng: random.Random) -> Image.Image:
        noise = np.random.default_rng(rng.getrandbits(64)).normal(0, sigma, (image.height, image.width, 3))
        return Image.fromarray(np.clip(np.rint(np.asarray(image) + noise), 0, 255).astype(np.uint8))
    return edit


def _occlude(area: float):
    """A grey rectangle of the picture's aspect covering ``area`` of it, at a place drawn from ``rng``."""
    def edit(image: Image.Image, rng: random.Random) -> Image.Image:
        covered = image.copy()
        left, top, right, bottom = _box(image, area, rng)
        ImageDraw.Draw(covered).rectangle((left, top, right - 1, bottom - 1), fill=GREY)
        return covered
    return edit


def _screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    """A crop keeping 80 % of the area, a 1-degree turn, a resize to 0.8 (then saved as JPEG 70)."""
    return _scaled(0.8)(_rotate(1)(_crop(0.8)(image, rng), rng), rng)


PNG = ("PNG", {})
EDITS = {  # name: (edit of a PIL image with a seeded random.Random, (format, save options) of the file made)
    "none": (_same, PNG),
    "jpeg50": (_same, ("JPEG", {"quality": 50})),
    "webp50": (_same, ("WEBP", {"quality": 50})),
    "half": (_scaled(0.5), PNG),
    "long720+jpeg80": (_long_side(720), ("JPEG", {"quality": 80})),
    "crop50": (_crop(0.5), PNG),
    "median3": (lambda image, rng: image.filter(ImageFilter.MedianFilter(3)), PNG),
    "screenshot": (_screenshot, ("JPEG", {"quality": 70})),
    "brightness1.3": (_enhance(ImageEnhance.Brightness, 1.3), PNG),
    "contrast0.7": (_enhance(ImageEnhance.Contrast, 0.7), PNG),
    "saturation1.6": (_enhance(ImageEnhance.Color, 1.6), PNG),
    "noise8": (_noise(8), PNG),
    "rotate5": (_rotate(5), PNG),
    "hflip": (lambda image, rng: image.transpose(Image.FLIP_LEFT_RIGHT), PNG),
    "occlusion15": (_occlude(0.15), PNG),
}
MUST_READ = ("brightness1.3", "contrast0.7", "saturation1.6", "noise8", "rotate5", "hflip", "occlusion15")


def edit_file(marked: Path, edit: str, seed: str) -> Path:
    """The marked file edited by ``edit`` (placements drawn from ``seed``), saved next to it."""
    transform, (form, options) = EDITS[edit]
    edited = transform(Image.open(marked).convert("RGB"), random.Random(seed))
    path = marked.with_name(f"{marked.stem}.{edit}.{form.lower()}")
    edited.save(path, form, **options)
    return path


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def quality(photo: Path, marked: Path) -> dict:
    """PSNR and FLIP ratio of a marked file against the photo it marks."""
    original, ours = pixels(photo), pixels(marked)
    decibels = float(psnr(from_uint8(ours)[None], from_uint8(original)[None]))
    return {"psnr": round(decibels, 3), "flip_ratio": flip_vs_jpeg(original, ours)["flip_ratio"]}


class Default:
    """wmark's default checkpoint (or ``model``, a candidate), used as a user would use it."""

    def __init__(self, model: str | None = None) -> None:
        self.marker = wmark.load(model)
        self.name = self.marker.name
        self.strength: float | None = None  # the card's

    def calibrate(self, photos: list[Path], ratio: float) -> dict:
        """Set the strength to the one whose median FLIP ratio over ``photos`` (built files) is ``ratio``."""
        marker, codeword = self.marker, self.marker.codeword(MESSAGE)
        covers = [from_uint8(pixels(photo))[None] for photo in photos]
        residuals = [pipeline.residual(marker.model, x, message(codeword, 1, marker.device), marker.domain)
                     for x in covers]
        found = strength_for_flip(covers, residuals, ratio)
        self.strength = found.strength
        return {"strength": round(found.strength, 4), "median_flip_ratio": round(found.ratio, 4),
                "photos": found.photos}

    def mark(self, photo: Path, output: Path, seed: str) -> dict:
        """Mark ``photo`` into ``output`` with MESSAGE (``seed`` unused: the message is fixed)."""
        report = self.marker.embed_file(photo, output, message=MESSAGE, strength=self.strength)
        return {"codeword": report.codeword, "warning": report.warning}

    def read(self, path: Path, mark: dict) -> dict:
        found, seconds = timed(lambda: self.marker.extract(path))
        right = sum(a == b for a, b in zip(found.codeword, mark["codeword"])) / len(mark["codeword"])
        return {"exact": found.detected and found.message == MESSAGE, "bit_acc": round(right, 4),
                "seconds": round(seconds, 3)}

    def false_detection(self, photo: Path) -> dict:
        """Extraction on an unmarked photo: ``detected`` must be False."""
        found, seconds = timed(lambda: self.marker.extract(photo))
        return {"detected": found.detected, "p_value": found.p_value, "seconds": round(seconds, 3)}


class PeerMethod:
    """An invisible-watermark method through :class:`wmark.bench.peers.Peer`, reading and writing files."""

    def __init__(self, name: str) -> None:
        self.peer = Peer(name)
        self.name = name

    def mark(self, photo: Path, output: Path, seed: str) -> dict:
        """Mark ``photo`` into ``output`` (PNG) with 64 random bits drawn from ``seed``."""
        bits = random.Random(seed).getrandbits(BITS)
        codeword = torch.tensor([(bits >> i) & 1 for i in range(BITS)])
        marked = self.peer.embed_tensor(from_uint8(pixels(photo))[None], codeword)
        Image.fromarray(to_uint8(marked[0])).save(output)
        return {"codeword": "".join(map(str, codeword.tolist()))}

    def read(self, path: Path, mark: dict) -> dict:
        logits, seconds = timed(lambda: self.peer.frame_logits(from_uint8(pixels(path))[None])[0])
        read = "".join("1" if logit > 0 else "0" for logit in logits.tolist())
        right = sum(a == b for a, b in zip(read, mark["codeword"])) / len(mark["codeword"])
        return {"exact": read == mark["codeword"], "bit_acc": round(right, 4), "seconds": round(seconds, 3)}


def build(source: Path, size: str, work: Path) -> Path:
    """``source`` built at ``size`` into ``work``, as a JPEG 95 file."""
    photo = work / f"{source.stem}-{size}.jpg"
    SIZES[size](Image.open(source).convert("RGB")).save(photo, quality=PHOTO_QUALITY)
    return photo


def photo_records(source: Path, key: str, methods: list, sizes: list[str], edits: list[str], work: Path) -> dict:
    """Everything measured on one photo: per size, the false detection, and per method its mark and reads."""
    records = {}
    for size in sizes:
        photo = build(source, size, work)
        record = {"pixels": list(Image.open(photo).size), "unmarked": methods[0].false_detection(photo), "methods": {}}
        for method in methods:
            marked = work / f"{photo.stem}-{method.name.replace(':', '-')}.png"
            mark = method.mark(photo, marked, f"{key}/{size}/{method.name}")
            reads = {edit: method.read(edit_file(marked, edit, f"{key}/{size}/{edit}"), mark) for edit in edits}
            record["methods"][method.name] = {**mark, **quality(photo, marked), "reads": reads}
        records[size] = record
    return records


def photos(val: Path, unseen: Path | None, count: int | None) -> dict[str, Path]:
    """The photos by key (``val/NAME``, ``unseen/NAME``), validation photos first; the first ``count``."""
    found = {f"val/{p.name}": p for p in image_files(val)}
    if unseen is not None:
        found |= {f"unseen/{p.name}": p for p in image_files(unseen)}
    return dict(list(found.items())[:count])


def summarize(records: dict, settings: dict) -> dict:
    """Per size and method: exact share, mean bit accuracy and median read seconds per edit (for the default, also
    the median over photos of its read time over :data:`READ_REFERENCE`'s on the same edited photo); median PSNR,
    FLIP ratio and read seconds; per size, the default's false detections on the unmarked photos."""
    summary = {}
    for size in settings["sizes"]:
        done = [r[size] for r in records.values()]
        methods = {}
        for name in settings["methods"]:
            marks = [d["methods"][name] for d in done]
            edits = {edit: {"exact": round(statistics.mean(m["reads"][edit]["exact"] for m in marks), 4),
                            "bit_acc": round(statistics.mean(m["reads"][edit]["bit_acc"] for m in marks), 4),
                            "median_seconds": round(statistics.median(m["reads"][edit]["seconds"] for m in marks), 3)}
                     for edit in settings["edits"]}
            if name == settings["model"] and READ_REFERENCE in settings["methods"]:
                references = [d["methods"][READ_REFERENCE] for d in done]
                for edit, cell in edits.items():
                    cell["read_ratio"] = round(statistics.median(
                        m["reads"][edit]["seconds"] / r["reads"][edit]["seconds"] for m, r in zip(marks, references)), 2)
            methods[name] = {"median_psnr": round(statistics.median(m["psnr"] for m in marks), 2),
                             "median_flip_ratio": round(statistics.median(m["flip_ratio"] for m in marks), 3),
                             "median_read_seconds": round(statistics.median(
                                 read["seconds"] for m in marks for read in m["reads"].values()), 3),
                             "edits": edits}
        summary[size] = {"photos": len(done), "false_detections": sum(d["unmarked"]["detected"] for d in done),
                         "methods": methods}
    return summary


def machine() -> dict:
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def resumed(partial: Path, settings: dict, resume: bool) -> dict:
    """The per-photo records a previous run of the same settings left in ``partial``, with ``--resume``."""
    if not (resume and partial.exists()):
        return {}
    saved = json.loads(partial.read_text())
    if saved["settings"] != settings:
        raise SystemExit(f"{partial} was made with other settings ({saved['settings']}); rerun without --resume")
    return saved["records"]


def run(todo: dict[str, Path], records: dict, settings: dict, methods: list, partial: Path) -> dict:
    """Measure every photo not in ``records``, saving them all to ``partial`` after each and estimating the rest."""
    left = [key for key in todo if key not in records]
    print(f"{len(todo) - len(left)} of {len(todo)} photos already done; {len(left)} to go", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for index, key in enumerate(left, 1):
            records[key] = photo_records(todo[key], key, methods, settings["sizes"], settings["edits"], Path(folder))
            partial.write_text(json.dumps({"settings": settings, "records": records}, indent=1) + "\n")
            per_photo = (time.perf_counter() - started) / index
            print(f"{key} done; {per_photo:.0f} s a photo, about {per_photo * (len(left) - index) / 60:.1f} min "
                  f"left (this run's total: about {per_photo * len(left) / 60:.1f} min)", flush=True)
    return records


def main() -> None:
    torch.set_num_threads(1)  # see the docstring
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--unseen", type=Path, default=None, help="photos no checkpoint saw (unseen_photos.py)")
    parser.add_argument("--photos", type=int, default=None, help="only the first N photos (smoke runs)")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"a subset of {','.join(SIZES)}")
    parser.add_argument("--edits", default=",".join(EDITS), help=f"a subset of {','.join(EDITS)}")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--resume", action="store_true", help="keep the photos done in <out>.partial.json")
    parser.add_argument("--model", default=None, help="a candidate checkpoint in place of the default")
    parser.add_argument("--flip", type=float, default=None, metavar="RATIO",
                        help="mark at the strength giving this median FLIP ratio over the built photos")
    args = parser.parse_args()
    sizes, edits = args.sizes.split(","), args.edits.split(",")
    unknown = sorted(set(sizes) - set(SIZES)) + sorted(set(edits) - set(EDITS))
    if unknown:
        parser.error(f"unknown size or edit: {', '.join(unknown)}")
    methods = [Default(args.model), *map(PeerMethod, PEERS)]
    todo = photos(args.val, args.unseen, args.photos)
    settings = {"model": methods[0].name, "message": MESSAGE, "methods": [m.name for m in methods],
                "sizes": sizes, "edits": edits, "must_read": [e for e in MUST_READ if e in edits]}
    if args.flip is not None:
        with tempfile.TemporaryDirectory() as folder:
            built = [build(source, size, Path(folder)) for source in todo.values() for size in sizes]
            settings["calibrated"] = {"target_flip": args.flip, **methods[0].calibrate(built, args.flip)}
        print(f"calibrated: {settings['calibrated']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial.json")
    records = run(todo, resumed(partial, settings, args.resume), settings, methods, partial)
    records = {key: records[key] for key in todo}
    result = {"settings": settings | {"photos": list(records)}, "machine": machine(),
              "summary": summarize(records, settings), "records": records}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    partial.unlink(missing_ok=True)
    print(small_photos_markdown(result))


if __name__ == "__main__":
    main()
