"""Which committed checkpoint is the default: the most robust of those the eye cannot find.

    python benchmarks/default_model.py [--write]

A checkpoint is eligible when it carries at least 64 raw bits; when at its card strength the median
over the validation photos of its FLIP as a ratio to a JPEG 75 re-save of the same photo is at most
0.6 and its median PSNR at least 40 dB (benchmarks/results/visibility.json: PSNR is not invisibility,
so visibility gates first); and when it still reads 0.90 of the bits of photos downscaled to a long
side of 320 px or more, marked there and saved as JPEG 75 (benchmarks/results/small_inputs.json, the
invisible-default issue's thumbnail bar). Eligible checkpoints are ranked on
benchmarks/results/robustness.json at their card strength: the mean over the default attack grid of
the share of payloads read back exactly (`word_ok`), averaged over photos and video.

For videos, a checkpoint qualifies when its codeword holds at least 9 bytes of text (the invisible-default
issue's video message); when frames of 320 px or more, marked in its video domain, keep 0.90 of
the bits after JPEG 75 and H.264 CRF 23 (small_inputs.json); and when either its frames keep 0.95 of the bits
after H.264 CRF 28 (robustness.json), or a 9-byte message, read from all frames of a clip, comes back after
CRF 28 on every pan of video_domain.json. The qualifying are ranked by the video payloads read back exactly
per frame (robustness.json). Writes benchmarks/results/default_model.json; ``--write`` also sets both defaults in
checkpoints/zoo.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from wmark import zoo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MIN_BITS = 64
MAX_FLIP_RATIO = 0.6
MIN_PSNR = 40.0
MIN_SMALL = 0.90
SMALL_FROM = 320  # long sides from here up
SMALL_CODEC = "jpeg75"
PARTS = ("photos", "video")
VIDEO_MIN_BYTES = 9
VIDEO_MIN_SMALL = 0.90
VIDEO_SMALL_CODECS = ("jpeg75", "h264_crf23")
VIDEO_ATTACK, VIDEO_MIN_BITS_READ = "h264:crf=28", 0.95


def at_card_strength(rows: list[dict], card) -> tuple[float, float] | None:
    """(mean word_ok, mean bit accuracy) over the grid at the card's strength, or None when not benchmarked."""
    mine = [r for r in rows if r["model"] == card.name and r["strength"] is not None
            and abs(r["strength"] - card.strength) < 1e-6]
    if not mine:
        return None
    return sum(r["word_ok"] for r in mine) / len(mine), sum(r["bit_accuracy"] for r in mine) / len(mine)


def choose(report: dict, cards: list, visibility: dict, small: dict, clips: dict | None = None) -> dict:
    """Each checkpoint's figures, why any is not eligible, and the default. ``visibility``: visibility.json's
    ``marks``; ``small``: small_inputs.json's ``models``; ``clips``: see :func:`choose_video`."""
    measured, excluded = {}, {}
    for card in cards:
        reasons = []
        if card.data["bits"] < MIN_BITS:
            reasons.append(f"{card.data['bits']} raw bits, under {MIN_BITS}")
        seen = visibility.get(card.name)
        if seen is None:
            reasons.append("visibility not measured")
        else:
            if seen["median_flip_ratio"] > MAX_FLIP_RATIO:
                reasons.append(f"median FLIP {seen['median_flip_ratio']} x JPEG 75's, over {MAX_FLIP_RATIO}")
            if seen["median_psnr"] < MIN_PSNR:
                reasons.append(f"median PSNR {seen['median_psnr']} dB, under {MIN_PSNR:g}")
        sizes = {int(side): codecs[SMALL_CODEC] for side, codecs in small.get(card.name, {}).items()
                 if int(side) >= SMALL_FROM}
        worst = min(((acc, side) for side, acc in sizes.items()), default=None)
        if worst is None:
            reasons.append("small inputs not measured")
        elif worst[0] < MIN_SMALL:
            reasons.append(f"reads {worst[0]:.3f} of the bits at {worst[1]} px after JPEG 75, under {MIN_SMALL}")
        row = {"median_flip_ratio": seen and seen["median_flip_ratio"], "median_psnr": seen and seen["median_psnr"],
               "small_inputs_worst": worst[0] if worst else None}
        figures = {part: at_card_strength(report[part]["results"], card) for part in PARTS}
        for part, value in figures.items():
            if value is not None:
                row[f"{part}_word_ok"], row[f"{part}_bit_acc"] = round(value[0], 4), round(value[1], 4)
        if any(value is None for value in figures.values()):
            reasons.append("not benchmarked at its card strength on photos and video (robustness.json)")
        else:
            row["word_ok"] = round(sum(value[0] for value in figures.values()) / len(PARTS), 4)
        measured[card.name] = row
        if reasons:
            excluded[card.name] = "; ".join(reasons)
    eligible = [name for name in measured if name not in excluded]
    if not eligible:
        raise SystemExit(f"no checkpoint qualifies: {excluded}")
    default = max(eligible, key=lambda name: measured[name]["word_ok"])
    video, video_excluded = choose_video(report, cards, small, clips or {})
    return {"max_flip_ratio": MAX_FLIP_RATIO, "min_psnr": MIN_PSNR, "min_bits": MIN_BITS, "min_small_inputs": MIN_SMALL,
            "small_inputs_from": SMALL_FROM, "default": default, "measured": measured, "excluded": excluded,
            "video_default": video, "video_excluded": video_excluded}


def choose_video(report: dict, cards: list, small: dict, clips: dict) -> tuple[str, dict]:
    """The video default (see the docstring) and why the others are not. ``clips``: checkpoint name -> whether
    every pan of video_domain.json gave the message back at the chosen video gain."""
    scores, excluded = {}, {}
    for card in cards:
        reasons = []
        if card.data.get("capacity_bytes", 0) < VIDEO_MIN_BYTES:
            held = card.data.get("capacity_bytes", 0)
            reasons.append(f"holds {held} byte{'' if held == 1 else 's'}, under {VIDEO_MIN_BYTES}")
        worst = min((acc for side, accuracies in small.get(card.name, {}).items() if int(side) >= SMALL_FROM
                     for codec, acc in accuracies.items() if codec in VIDEO_SMALL_CODECS), default=None)
        if worst is None or worst < VIDEO_MIN_SMALL:
            reasons.append(f"small inputs: worst {worst}")
        rows = [r for r in report["video"]["results"] if r["model"] == card.name and r["strength"] is not None
                and abs(r["strength"] - card.strength) < 1e-6]
        crf28 = next((r["bit_accuracy"] for r in rows if r["attack"] == VIDEO_ATTACK), None)
        if (crf28 is None or crf28 < VIDEO_MIN_BITS_READ) and not clips.get(card.name):
            reasons.append(f"{VIDEO_ATTACK}: {crf28} of the bits a frame, and no clip message measured")
        if reasons:
            excluded[card.name] = "; ".join(reasons)
        else:
            scores[card.name] = sum(r["word_ok"] for r in rows) / len(rows)
    if not scores:
        raise SystemExit(f"no checkpoint qualifies for video: {excluded}")
    return max(scores, key=scores.get), excluded


def load_inputs() -> tuple[dict, list, dict, dict, dict]:
    """The committed results and cards that :func:`choose` reads."""
    read = lambda name: json.loads((RESULTS / name).read_text())  # noqa: E731
    pans = read("video_domain.json")
    clips = {pans["model"]: any(r["gain"] == pans["chosen_gain"] for r in pans["rows"])
             and all(r["message"] for r in pans["rows"] if r["gain"] == pans["chosen_gain"])}
    return (read("robustness.json"), zoo.list_cards(), read("visibility.json")["marks"],
            read("small_inputs.json")["models"], clips)


def markdown(result: dict) -> str:
    """The rule's table: one line per checkpoint, the default first."""
    lines = ["| checkpoint | median FLIP ÷ JPEG 75's | median PSNR | worst thumbnail ≥ 320 px, JPEG 75 | "
             "payloads read at card strength, photos | video | eligible |", "|---|---|---|---|---|---|---|"]
    order = sorted(result["measured"].items(), key=lambda item: (item[0] != result["default"], item[0]))
    for name, row in order:
        cells = [f"{row[k]:.4f}" if row.get(k) is not None else "–" for k in ("photos_word_ok", "video_word_ok")]
        flip = "–" if row["median_flip_ratio"] is None else f"{row['median_flip_ratio']:.2f}"
        psnr = "–" if row["median_psnr"] is None else f"{row['median_psnr']:.1f} dB"
        small = "–" if row["small_inputs_worst"] is None else f"{row['small_inputs_worst']:.3f}"
        verdict = "**default**" if name == result["default"] else ("yes" if name not in result["excluded"]
                                                                    else result["excluded"][name])
        lines.append(f"| {name} | {flip} | {psnr} | {small} | {' | '.join(cells)} | {verdict} |")
    lines += ["", f"For videos: **{result['video_default']}**. Not eligible there: "
              + "; ".join(f"{name} ({why})" for name, why in result["video_excluded"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also set the default in checkpoints/zoo.json")
    args = parser.parse_args()
    result = choose(*load_inputs())
    (RESULTS / "default_model.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"default: {result['default']}; for videos: {result['video_default']}")
    if args.write:
        (ROOT / "checkpoints" / "zoo.json").write_text(
            json.dumps({"default": result["default"], "video": result["video_default"]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
