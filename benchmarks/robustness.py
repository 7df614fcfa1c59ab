"""Robustness of every committed checkpoint and of the invisible-watermark peers, on photos and a video.

    python benchmarks/robustness.py [--val ../shared/data/val] [--frames 25] [--only NAME ...]

Runs the benchmark engine (`wmark bench`) with the default attack grid on the 10 validation photos
(2-4 MP, never trained on) and on a video. There is no real video among the project's data, so the
video is a camera-pan clip rendered from a real validation photo: a slow pan with a slight zoom over
`FallenLeaf.jpg` (autumn leaves), 1280x720, 25 fps, 3 s, encoded with libx264 CRF 18, written to a temporary folder
(deterministic: same photo, same path, same encoder settings). Its `--frames` frames, spread evenly,
are benchmarked; batches of 16 of them are attacked as one clip.

Checkpoints run at strengths 0.5, 1 and 1.5 and at their card's strength (the quality-robustness
curve); the peers have no strength knob. RivaGAN (`imwatermark:rivaGan`) is left out: on this 2-core CPU its
ONNX networks take about 30 s to embed and 45 s to decode one 2.6 MP photo, hours for the grid
(`benchmarks/speed.py` records its 720p times). Writes benchmarks/results/robustness.json,
robustness_curves.png (photos), robustness_video_curves.png and robustness_timeline.png (video).
`--card-only` skips the sweep (the card's strength alone, for a model whose strength is set for a
visibility rather than a PSNR). `--only NAME` (repeatable) reruns just those models and replaces their rows in the existing
robustness.json (a new checkpoint need not cost a rerun of all); the per-frame timeline is then
left as it was.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from wmark import zoo
from wmark.bench import engine as bench
from wmark.bench import peers
from wmark.bench.report import plot_curves, plot_timeline

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STRENGTHS = [0.5, 1.0, 1.5, None]
CLIP = {"photo": "FallenLeaf.jpg", "size": (1280, 720), "rate": 25, "seconds": 3, "crf": 18, "zoom": 1.15}


def render_pan(photo: Path, output: Path, seconds: float = CLIP["seconds"]) -> None:
    """A slow left-to-right pan with a slight zoom-in over ``photo``, ``seconds`` long, encoded as H.264 (CRF 18)."""
    image = Image.open(photo).convert("RGB")
    width, height = CLIP["size"]
    frames = round(CLIP["rate"] * seconds)
    with av.open(str(output), "w") as container:
        stream = container.add_stream("libx264", rate=CLIP["rate"])
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, CLIP["rate"])
        stream.options = {"crf": str(CLIP["crf"]), "preset": "medium", "threads": "1"}
        for t in range(frames):
            u = t / (frames - 1)
            scale = (1 + (CLIP["zoom"] - 1) * u) * width / (image.width * 0.8)  # the window is 80% wide at first
            box_w, box_h = width / scale, height / scale
            left = (image.width - box_w) * (0.1 + 0.8 * u)
            top = (image.height - box_h) / 2
            view = image.resize((width, height), Image.LANCZOS, box=(left, top, left + box_w, top + box_h))
            frame = av.VideoFrame.from_ndarray(np.asarray(view), format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def models(only: list[str] | None = None) -> list:
    names = [card.name for card in zoo.list_cards()] + [n for n in peers.available() if not n.endswith("rivaGan")]
    return bench.load_models(only or names, "cpu")


def merged(previous: dict, new: dict, rerun: set[str]) -> dict:
    """``new``'s rows for the ``rerun`` models in place of ``previous``'s (same positions; rows it
    lacks are appended)."""
    key = lambda row: (row["model"], row["strength"], row["attack"])  # noqa: E731
    fresh = {key(row): row for row in new["results"]}
    rows = [fresh.pop(key(row), None) if row["model"] in rerun else row for row in previous["results"]]
    rows = [row for row in rows if row is not None] + list(fresh.values())
    names = list(dict.fromkeys([*previous["settings"]["models"], *new["settings"]["models"]]))
    speeds = {**previous["speed"]["models"], **new["speed"]["models"]}
    return {
        "results": rows,
        "speed": {**previous["speed"], "models": {name: speeds[name] for name in names if name in speeds}},
        "errors": [e for e in previous["errors"] if e.get("model") not in rerun] + new["errors"],
        "settings": {**previous["settings"], "models": names},
    }


def run(inputs: list[Path], chosen: list, frames: int | None, out: Path,
        previous: dict | None = None) -> tuple[dict, bench.Result]:
    result = bench.run(inputs, chosen, strengths=STRENGTHS, frames=frames, device="cpu")
    summary = bench.summarize(result)
    summary["settings"]["inputs"] = [str(p.relative_to(ROOT.parent)) if p.is_relative_to(ROOT.parent) else p.name
                                     for p in inputs]
    if previous is not None:
        summary = merged(previous, summary, {m.name for m in chosen})
    plot_curves(summary, out)
    return summary, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--only", action="append", metavar="NAME", help="rerun only this model (repeatable)")
    parser.add_argument("--card-only", action="store_true", help="only each card's strength, not the sweep")
    args = parser.parse_args()
    if args.card_only:
        STRENGTHS[:] = [None]
    chosen = models(args.only)
    RESULTS.mkdir(exist_ok=True)
    previous = json.loads((RESULTS / "robustness.json").read_text()) if args.only else None
    photos, _ = run([args.val.resolve()], chosen, None, RESULTS / "robustness_curves.png",
                    previous and previous["photos"])
    with tempfile.TemporaryDirectory() as work:
        clip = Path(work) / "pan.mp4"
        render_pan(args.val / CLIP["photo"], clip)
        video, result = run([clip], chosen, args.frames, RESULTS / "robustness_video_curves.png",
                            previous and previous["video"])
        if not args.only:
            plot_timeline(result, RESULTS / "robustness_timeline.png")
    report = {
        "photos": photos,
        "video": {"source": f"camera-pan clip rendered from the real photo {CLIP['photo']} (see the docstring)",
                  "clip": CLIP, **video},
        "excluded": {"imwatermark:rivaGan": "too slow on this CPU (about 30 s embed, 45 s decode per 2.6 MP photo)"},
    }
    (RESULTS / "robustness.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


def markdown(report: dict) -> str:
    """The table of docs/bench.md (benchmarks/readme_tables.py): mean bit accuracy and share of exact codewords
    per attack, at default strengths."""
    parts = ("photos", "video")
    models = list(dict.fromkeys(g["model"] for g in report["photos"]["results"]))
    defaults = {m: None if peers.is_peer(m) else zoo.find_card(m).strength for m in models}
    cells = {(part, g["model"], g["attack"]): g for part in parts for g in report[part]["results"]
             if g["strength"] == defaults[g["model"]]}
    attacks = list(dict.fromkeys(a for _, _, a in cells))
    header = [f"{m} {part}" for m in models for part in parts]
    lines = ["| attack | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    psnr = [f"{cells[(part, m, 'identity')]['psnr']:.1f}" for m in models for part in parts]
    lines.append("| PSNR (dB) | " + " | ".join(psnr) + " |")
    for attack in attacks:
        row = [cells.get((part, m, attack)) for m in models for part in parts]
        text = ["" if g is None else f"{g['bit_accuracy']:.3f} · {g['word_ok']:.0%}" for g in row]
        lines.append(f"| `{attack}` | " + " | ".join(text) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
