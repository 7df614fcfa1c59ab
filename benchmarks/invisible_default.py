"""The invisible-default issue's acceptance check, done as a user would: `wmark embed` and
`wmark extract --json` at the default model and strength, attacks outside wmark.

    python benchmarks/invisible_default.py [-m MODEL] [--val ../shared/data/val] [--skip-video]

For each validation photo: a 9-byte text message is embedded (`wmark embed --message`, PNG out);
PSNR and FLIP (as a ratio to a JPEG 75 re-save, :mod:`wmark.perception.flip`) are measured on the
saved file; the file is attacked with Pillow or PyAV (`benchmarks/thresholds.py`'s JPEG 50 and 75,
0.5x resize and back, blur sigma 1.5, one H.264 CRF 28 frame, brightness x1.3, and thumbnails: a
downscale to a long side of 1024 or 320 px, then JPEG 75), and `wmark extract --json` reads it. Bit
accuracy compares the raw bits read with the codeword `wmark embed` reported; the message must come
back exactly with no attack and after JPEG 75. Video: a 1280x720, 3 s pan with an AAC track is
marked with `wmark embed`, re-encoded with libx264 at CRF 28 by PyAV (audio copied), and read back.
Each target of the issue is judged on the photos of 1.7-4 MP (the issue's test photos; all photos'
bit accuracy is recorded too); writes benchmarks/results/invisible_default.json. ``--recheck`` judges
the committed rows again without measuring.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from robustness import render_pan
from thresholds import ATTACKS as PILLOW_ATTACKS, ROOT, thumbnail
from visibility import measure

RESULT = ROOT / "benchmarks" / "results" / "invisible_default.json"
MEGAPIXELS = (1.7, 4.0)  # the held-out test photos; grid-l.jpg (4.19 MP artwork) is outside
MESSAGE = "ID:4F2A9C"  # 9 bytes: a user ID or a short URL code
VIDEO_PHOTO = "FallenLeaf.jpg"


ATTACKS = {name: PILLOW_ATTACKS[name] for name in
           ("none", "jpeg75", "jpeg50", "resize0.5", "blur1.5", "h264crf28", "brightness1.3")}
ATTACKS.update({"thumb1024_jpeg75": thumbnail(1024), "thumb320_jpeg75": thumbnail(320)})
TARGETS = {"jpeg50": 0.99, "resize0.5": 0.99, "blur1.5": 0.99, "h264crf28": 0.99, "thumb1024_jpeg75": 0.99,
           "brightness1.3": 0.97, "thumb320_jpeg75": 0.90}


def wmark(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "wmark", *args, "--json"], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"wmark {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def photo_row(photo: Path, model: list[str], work: Path) -> dict:
    marked = work / f"{photo.stem}.png"
    report = wmark("embed", str(photo), str(marked), "--message", MESSAGE, *model)
    codeword = report["codeword"]
    row = measure(photo, np.asarray(Image.open(marked).convert("RGB")))
    row["megapixels"] = round(np.prod(Image.open(photo).size) / 1e6, 2)
    for name, attack in ATTACKS.items():
        attacked = work / f"{photo.stem}-{name}.png"
        attack(Image.open(marked).convert("RGB")).save(attacked)
        found = wmark("extract", str(attacked), *model)
        row[name] = sum(a == b for a, b in zip(found["codeword"], codeword)) / len(codeword)
        row[f"{name}_message"] = found["message"] == MESSAGE
    return row


def add_audio(video: Path, output: Path, seconds: float, rate: int = 48000) -> None:
    """``video`` with a 440 Hz AAC tone added (the video stream copied)."""
    with av.open(str(video)) as source, av.open(str(output), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        audio = out.add_stream("aac", rate=rate)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
        samples = int(seconds * rate)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
        for start in range(0, samples, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def reencode(source: Path, output: Path, crf: int) -> None:
    """Re-encode the video with libx264 at ``crf`` (PyAV, outside wmark); audio packets copied."""
    with av.open(str(source)) as src, av.open(str(output), "w") as out:
        video_in = src.streams.video[0]
        video = out.add_stream("libx264", rate=video_in.average_rate)
        video.width, video.height, video.pix_fmt = video_in.width, video_in.height, "yuv420p"
        video.options = {"crf": str(crf)}
        audio = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux():
            if packet.stream.type == "video":
                for frame in packet.decode():
                    frame.pts = None
                    out.mux(video.encode(frame))
            elif packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
        out.mux(video.encode(None))


def video_check(val: Path, model: list[str], work: Path) -> dict:
    silent, clip, marked, attacked = (work / f"{n}.mp4" for n in ("silent", "clip", "marked", "crf28"))
    render_pan(val / VIDEO_PHOTO, silent)
    add_audio(silent, clip, seconds=3)
    try:
        embedded = wmark("embed", str(clip), str(marked), "--message", MESSAGE, *model)
    except RuntimeError as exc:  # e.g. a video default that cannot hold 9 bytes: the check fails, the rows stay
        return {"size": "1280x720", "error": str(exc), "audio_kept": False, "crf28_message": False}
    reencode(marked, attacked, 28)
    with av.open(str(attacked)) as container:
        has_audio = bool(container.streams.audio)
    found = wmark("extract", str(attacked), *model)
    accuracy = sum(a == b for a, b in zip(found["codeword"], embedded["codeword"])) / len(embedded["codeword"])
    return {"size": "1280x720", "frames": embedded["frames"], "psnr_y": embedded["psnr"], "audio_kept": has_audio,
            "crf28_message": found["message"] == MESSAGE, "crf28_bit_accuracy": round(accuracy, 4)}


def evaluate(rows: list[dict], video: dict | None) -> dict:
    """The issue's targets, judged on its test photos: those of 1.7-4 MP (``MEGAPIXELS``)."""
    tested = [r for r in rows if MEGAPIXELS[0] <= r["megapixels"] <= MEGAPIXELS[1]]
    means = {name: round(statistics.mean(r[name] for r in tested), 4) for name in ATTACKS}
    checks = {
        "median FLIP <= 0.6 x JPEG 75's": statistics.median(r["flip_ratio"] for r in tested) <= 0.6,
        "median PSNR >= 44 dB": statistics.median(r["psnr"] for r in tested) >= 44,
        "no photo below 40 dB": min(r["psnr"] for r in tested) >= 40,
        **{f"{attack} >= {target}": means[attack] >= target for attack, target in TARGETS.items()},
        "9-byte message exact on every photo, no attack": all(r["none_message"] for r in tested),
        "9-byte message exact on every photo, JPEG 75": all(r["jpeg75_message"] for r in tested),
    }
    if video is not None:
        checks["720p video with audio, 9 bytes after CRF 28"] = video["crf28_message"] and video["audio_kept"]
    return {"photos_tested": [r["photo"] for r in tested],
            "median_psnr": round(statistics.median(r["psnr"] for r in tested), 2),
            "min_psnr": round(min(r["psnr"] for r in tested), 2),
            "median_flip_ratio": round(statistics.median(r["flip_ratio"] for r in tested), 3),
            "bit_accuracy": means, "checks": checks, "passed": all(checks.values()),
            "all_photos_bit_accuracy": {name: round(statistics.mean(r[name] for r in rows), 4) for name in ATTACKS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", help="checkpoint (default: the zoo's default)")
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--recheck", action="store_true", help="judge the committed rows again, measuring nothing")
    args = parser.parse_args()
    if args.recheck:
        result = json.loads(RESULT.read_text())
        for row in result["rows"]:
            row.setdefault("megapixels", round(np.prod(Image.open(args.val / row["photo"]).size) / 1e6, 2))
        result.update(evaluate(result["rows"], result["video"]))
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
        return
    model = ["-m", args.model] if args.model else []
    name = args.model or wmark("models")["default"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for photo in sorted(args.val.glob("*.jpg")):
            rows.append(photo_row(photo, model, work))
            print(rows[-1], file=sys.stderr)
        video = None if args.skip_video else video_check(args.val, model, work)
    result = {"model": name, "message": MESSAGE, "photos": len(rows), **evaluate(rows, video), "video": video,
              "rows": rows}
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
