"""Plot a training run's bit accuracy and PSNR against its step, over every segment it was trained in.

    python benchmarks/training_curves.py checkpoints/training/hidden-32px [--smooth 500]

Reads the folder's ``log-segment1.csv``, ``log-segment2.csv``, ... and then ``log.csv`` (what `wmark train`
writes; a segment continued with ``--init`` counts its steps from 0 again, so each is shifted to start where
the one before it ended). Draws the running training bit accuracy (mean of each ``--smooth`` steps), the
validation bit accuracy with no attack, after JPEG 50 and (where a run through a domain validated it) WebP 50,
the training PSNR and, where logged, the validation FLIP ratio to a JPEG 75 re-save. Writes
benchmarks/results/training_curves_<folder>.png and prints each segment's last validation row.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[1]
SMOOTH_STEPS = 500
VALIDATION = {"val_bit_acc[identity]": "validation, no attack", "val_bit_acc[jpeg:quality=50]": "validation, JPEG 50",
              "val_bit_acc[webp:quality=50]": "validation, WebP 50"}


def segments(folder: Path) -> list[Path]:
    numbered = sorted(folder.glob("log-segment*.csv"), key=lambda p: int(p.stem.removeprefix("log-segment")))
    return numbered + [folder / "log.csv"]


def read_run(folder: Path) -> list[dict]:
    """Every logged row of every segment, with ``step`` made cumulative and ``segment`` numbered from 1."""
    rows, offset = [], 0
    for number, path in enumerate(segments(folder), 1):
        with path.open(newline="") as handle:
            segment = [dict(row, segment=number) for row in csv.DictReader(handle)]
        for row in segment:
            row["step"] = int(row["step"]) + offset
        offset = segment[-1]["step"] if segment else offset
        rows += segment
    return rows


def smoothed(rows: list[dict], key: str, window: int = SMOOTH_STEPS) -> tuple[list[int], list[float]]:
    """Means of ``key`` over each ``window`` steps (event rows, which log no value, are skipped)."""
    steps, values, bucket = [], [], []
    for row in rows:
        if not row.get(key):
            continue
        bucket.append(float(row[key]))
        if row["step"] % window == 0:
            steps.append(row["step"])
            values.append(sum(bucket) / len(bucket))
            bucket = []
    return steps, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--smooth", type=int, default=SMOOTH_STEPS, help="steps each training mean covers")
    args = parser.parse_args()
    rows = read_run(args.folder)
    fig = Figure(figsize=(10, 3.6))
    accuracy, quality = fig.subplots(1, 2)
    accuracy.plot(*smoothed(rows, "bit_acc", args.smooth),
                  label=f"training batches logged (mean over each {args.smooth} steps)")
    for key, label in VALIDATION.items():
        validated = [row for row in rows if row.get(key)]
        if validated:
            accuracy.plot([r["step"] for r in validated], [float(r[key]) for r in validated], marker="o", label=label)
    quality.plot(*smoothed(rows, "psnr", args.smooth), label="training PSNR")
    flips = [row for row in rows if row.get("val_flip_ratio")]
    if flips:
        ratio = quality.twinx()
        ratio.plot([r["step"] for r in flips], [float(r["val_flip_ratio"]) for r in flips], marker="o", color="C3",
                   label="validation FLIP ÷ JPEG 75's")
        ratio.set_ylabel("FLIP ratio")
        ratio.legend(fontsize=7, loc="lower right")
    ends = [before["step"] for before, after in zip(rows, rows[1:]) if before["segment"] != after["segment"]]
    for ax, ylabel in ((accuracy, "bit accuracy"), (quality, "PSNR (dB)")):
        for end in ends:
            ax.axvline(end, color="grey", linestyle=":")
        ax.set_xlabel("step (all segments)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{args.folder.name}: segments end at the dotted lines", fontsize=9)
    fig.tight_layout()
    out = ROOT / "benchmarks" / "results" / f"training_curves_{args.folder.name}.png"
    fig.savefig(out, dpi=110)
    for number in sorted({row["segment"] for row in rows}):
        validated = [row for row in rows if row["segment"] == number and row.get("val_psnr")]
        if validated:
            last = validated[-1]
            print(f"segment {number}: step {last['step']}, validation PSNR {last['val_psnr']} dB, "
                  + ", ".join(f"{label} {last[key]}" for key, label in VALIDATION.items() if last.get(key)))
    print(out)


if __name__ == "__main__":
    main()
