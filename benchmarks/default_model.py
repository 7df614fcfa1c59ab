"""Which committed checkpoint is the default: the most robust at 40 dB PSNR that also reads small inputs.

    python benchmarks/default_model.py [--write]

A checkpoint is eligible when it carries at least 64 raw bits; when its card strength gives a median
PSNR of at least 40 dB (less a 0.05 dB tolerance) on the validation photos
(benchmarks/results/thresholds_<name>.json, the `wmark embed` protocol: PSNR of the 8-bit files); and
when it still reads 0.95 of the bits (about what the Reed-Solomon code corrects) at every size in
benchmarks/results/small_inputs.json, down to 160 px thumbnails, after JPEG 75 and H.264 CRF 23.
Eligible checkpoints are ranked on benchmarks/results/robustness.json: on the photos and on the
video, the mean over the default attack grid of the share of payloads read back exactly (`word_ok`)
and of the bit accuracy at each strength of the sweep (0.5, 1, 1.5 and the card's), interpolated
linearly in the benchmark's PSNR (the mean over the inputs) to 40 dB (where the whole sweep is above
40 dB, its lowest-PSNR point stands in: a lower bound). The default reads the most payloads,
averaged over photos and video. Writes benchmarks/results/default_model.json; ``--write`` also sets
it in checkpoints/zoo.json.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from wmark import zoo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PSNR = 40.0
# Cards calibrate their strength for a median PSNR of 40 dB on float images; the 8-bit files land within
# a few hundredths of a dB of it.
PSNR_TOLERANCE = 0.05
MIN_BITS = 64
MIN_SMALL = 0.95
SMALL_CODECS = ("jpeg75", "h264_crf23")  # the ordinary 4:2:0 ones
PARTS = ("photos", "video")


def sweep(rows: list[dict], model: str) -> list[tuple[float, float, float, float]]:
    """(strength, PSNR, mean word_ok, mean bit accuracy) at each strength, by falling PSNR."""
    by_strength = defaultdict(list)
    for row in rows:
        if row["model"] == model and row["strength"] is not None:
            by_strength[row["strength"]].append(row)
    points = []
    for strength, group in by_strength.items():
        psnr = next((r["psnr"] for r in group if r["attack"] == "identity"), None)
        if psnr is None:
            raise SystemExit(f"robustness.json has no identity row for {model} at strength {strength}")
        points.append((strength, psnr, sum(r["word_ok"] for r in group) / len(group),
                       sum(r["bit_acc"] for r in group) / len(group)))
    return sorted(points, key=lambda p: -p[1])


def at_psnr(points: list[tuple[float, float, float, float]], psnr: float) -> tuple[float, float, bool] | None:
    """(word_ok, bit accuracy, exact) interpolated to ``psnr``; at the sweep's lowest PSNR if that is still
    above ``psnr``, with ``exact`` False (a lower bound); None if the whole sweep is below it."""
    for (_, p0, w0, a0), (_, p1, w1, a1) in zip(points, points[1:]):
        if p1 <= psnr <= p0:
            t = 0.0 if p0 == p1 else (p0 - psnr) / (p0 - p1)
            return w0 + t * (w1 - w0), a0 + t * (a1 - a0), True
    if points and points[-1][1] >= psnr:
        return points[-1][2], points[-1][3], False
    return None


def choose(report: dict, cards: list, medians: dict[str, float], small: dict) -> dict:
    """Each checkpoint's figures at 40 dB, why any is not eligible, and the default. ``medians``: median PSNR
    at the card's strength by checkpoint; ``small``: small_inputs.json's ``models``."""
    measured, excluded = {}, {}
    for card in cards:
        if card.data["bits"] < MIN_BITS:
            excluded[card.name] = f"{card.data['bits']} raw bits, under {MIN_BITS}"
            continue
        figures = {part: at_psnr(sweep(report[part]["results"], card.name), PSNR) for part in PARTS}
        reasons = [f"its whole strength sweep is under {PSNR:g} dB on the {part}"
                   for part, value in figures.items() if value is None]
        median = medians.get(card.name)
        if median is None:
            reasons.append("no thresholds_<name>.json for its median PSNR")
        elif median < PSNR - PSNR_TOLERANCE:
            reasons.append(f"median PSNR {median} dB at its card's strength, under {PSNR:g}")
        worst = min(((acc, side, codec) for side, accuracies in small.get(card.name, {}).items()
                     for codec, acc in accuracies.items() if codec in SMALL_CODECS), default=None)
        if worst is None:
            reasons.append("small inputs not measured")
        elif worst[0] < MIN_SMALL:
            reasons.append(f"reads {worst[0]:.3f} of the bits at {worst[1]} px after {worst[2]}, under {MIN_SMALL}")
        row = {"median_psnr": median, "small_inputs_worst": worst[0] if worst else None}
        for part, value in figures.items():
            if value is not None:
                row[f"{part}_word_ok"], row[f"{part}_bit_acc"] = round(value[0], 4), round(value[1], 4)
                row[f"{part}_exact"] = value[2]
        if not any(value is None for value in figures.values()):
            row["word_ok"] = round(sum(value[0] for value in figures.values()) / len(PARTS), 4)
        measured[card.name] = row
        if reasons:
            excluded[card.name] = "; ".join(reasons)
    eligible = [name for name in measured if name not in excluded]
    if not eligible:
        raise SystemExit(f"no checkpoint qualifies: {excluded}")
    default = max(eligible, key=lambda name: measured[name]["word_ok"])
    return {"psnr": PSNR, "psnr_tolerance": PSNR_TOLERANCE, "min_bits": MIN_BITS, "min_small_inputs": MIN_SMALL,
            "default": default, "measured": measured, "excluded": excluded}


def load_inputs() -> tuple[dict, list, dict[str, float], dict]:
    """The committed results and cards that :func:`choose` reads."""
    cards = zoo.list_cards()
    medians = {}
    for card in cards:
        path = RESULTS / f"thresholds_{card.name}.json"
        if path.exists():
            medians[card.name] = json.loads(path.read_text())["means"]["median_psnr"]
    small = json.loads((RESULTS / "small_inputs.json").read_text())["models"]
    return json.loads((RESULTS / "robustness.json").read_text()), cards, medians, small


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also set the default in checkpoints/zoo.json")
    args = parser.parse_args()
    result = choose(*load_inputs())
    (RESULTS / "default_model.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"| checkpoint | median PSNR at card strength | worst small input | at {PSNR:g} dB: payloads read, photos "
          "| video | bit accuracy, photos | video |")
    print("|---|---|---|---|---|---|---|")
    for name, row in sorted(result["measured"].items(), key=lambda item: -item[1].get("word_ok", 0)):
        cells = []
        for key in ("word_ok", "bit_acc"):  # payloads (photos, video), then bits (photos, video)
            for part in PARTS:
                bound = "≥ " if row.get(f"{part}_exact") is False else ""
                cells.append(f"{bound}{row[f'{part}_{key}']:.4f}" if f"{part}_{key}" in row else "–")
        median = "–" if row["median_psnr"] is None else f"{row['median_psnr']} dB"
        worst = "–" if row["small_inputs_worst"] is None else row["small_inputs_worst"]
        print(f"| {name} | {median} | {worst} | {' | '.join(cells)} |")
    print("(≥: the whole strength sweep is above 40 dB there; its lowest-PSNR point, a lower bound.)")
    for name, why in result["excluded"].items():
        print(f"not eligible: {name}: {why}")
    print(f"default: {result['default']}")
    if args.write:
        (ROOT / "checkpoints" / "zoo.json").write_text(json.dumps({"default": result["default"]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
