"""What a benchmark run writes: frames.csv, summary.json, curves.png, timeline.png, and CI thresholds.

A threshold ``SPEC=ACC`` (split on the last ``=``, e.g. ``jpeg:quality=50=0.95``) holds when every
model's mean bit accuracy under attack SPEC, at every strength run, is at least ACC (read at the run's search level,
by default ``off``: as received). Each threshold is one testcase of ``junit.xml``.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from wmark.bench.engine import COLUMNS, DEFAULT_ATTACKS, Result
from wmark.errors import WmarkError
from wmark.io.atomic import atomic_output


@dataclass
class Threshold:
    attack: str
    minimum: float

    @property
    def label(self) -> str:
        return f"{self.attack}={self.minimum:g}"


def parse_threshold(text: str) -> Threshold:
    """``SPEC=ACC`` -> Threshold; ACC is a bit accuracy in [0, 1]."""
    spec, eq, value = text.rpartition("=")
    try:
        minimum = float(value)
    except ValueError:
        minimum = math.nan
    if not eq or not spec.strip() or not 0 <= minimum <= 1:
        raise WmarkError(f"bad --fail-under {text!r}: expected ATTACK_SPEC=ACCURACY with an accuracy in [0, 1], "
                         "e.g. 'jpeg:quality=50=0.95'")
    return Threshold(spec.strip(), minimum)


def parse_thresholds(texts: list[str], attacks: list[str] | None) -> list[Threshold]:
    """Parse ``--fail-under`` values; each must name an attack of the run (``attacks`` None: the default grid)."""
    thresholds = [parse_threshold(t) for t in texts]
    grid = DEFAULT_ATTACKS if attacks is None else attacks
    for threshold in thresholds:
        if threshold.attack not in grid:
            raise WmarkError(f"--fail-under names {threshold.attack!r}, which this run does not apply; "
                             f"give it with -a, or use one of: {', '.join(grid)}")
    return thresholds


def _group(group: dict) -> str:
    return (group["model"] + ("" if group["strength"] is None else f" at strength {group['strength']:g}")
            + f", search {group['search']}")


def check_thresholds(summary: dict, thresholds: list[Threshold]) -> list[dict]:
    """One outcome per threshold: the failing (model, strength, mean) groups, or no results at all."""
    outcomes = []
    for threshold in thresholds:
        groups = [g for g in summary["results"] if g["attack"] == threshold.attack]
        failures = [f"{_group(g)}: mean bit accuracy {g['bit_accuracy']:.4f} < {threshold.minimum:g}"
                    for g in groups if g["bit_accuracy"] < threshold.minimum]
        if not groups:
            failures = [f"no results for {threshold.attack} (H.264 attacks run on videos only)"]
        outcomes.append({"threshold": threshold.label, "attack": threshold.attack, "minimum": threshold.minimum,
                         "passed": not failures, "failures": failures})
    return outcomes


def write_junit(path: Path, outcomes: list[dict]) -> None:
    """A JUnit XML report: one testcase per threshold, with a failure element when it failed."""
    failed = sum(not o["passed"] for o in outcomes)
    suite = ElementTree.Element("testsuite", name="wmark bench", tests=str(len(outcomes)), failures=str(failed))
    for outcome in outcomes:
        case = ElementTree.SubElement(suite, "testcase", classname="wmark.bench", name=outcome["threshold"])
        if not outcome["passed"]:
            failure = ElementTree.SubElement(case, "failure", message=outcome["failures"][0])
            failure.text = "\n".join(outcome["failures"])
    with atomic_output(path) as tmp:
        ElementTree.ElementTree(suite).write(tmp, encoding="utf-8", xml_declaration=True)


def write_outputs(result: Result, summary: dict, out: Path) -> None:
    """frames.csv, summary.json, curves.png (and curves_flip.png when FLIP was measured), timeline.png (for
    videos), junit.xml (with thresholds) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "frames.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(result.rows)
    with atomic_output(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    plot_curves(summary, out / "curves.png")
    if any(g["flip_ratio"] is not None for g in summary["results"]):
        plot_curves(summary, out / "curves_flip.png", x="flip_ratio")
    if result.video_inputs:
        plot_timeline(result, out / "timeline.png")
    if "thresholds" in summary:
        write_junit(out / "junit.xml", summary["thresholds"])


def _figure(panels: int, columns: int, size: tuple[float, float]):
    """A matplotlib Figure (no pyplot, no global state) with ``panels`` axes in a grid."""
    from matplotlib.figure import Figure

    columns = min(columns, panels)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows))
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes


def _accuracy_axis(ax, title: str, xlabel: str, lowest: float) -> None:
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("bit accuracy")
    ax.set_ylim(min(0.4, lowest - 0.03), 1.02)
    ax.grid(alpha=0.3)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def _search(entry: dict) -> str:
    """The search level a summary group or row was read at (``off`` in summaries written before it was recorded)."""
    return entry.get("search", "off")


def plot_curves(summary: dict, path: Path, x: str = "psnr") -> None:
    """Bit accuracy against PSNR (``x`` "psnr") or FLIP relative to JPEG 75 (``x`` "flip_ratio"): one panel per
    attack, one line per model (and search level), a point per strength. Each panel's title gives the run's search
    level; a model read at another (a peer, which has none) says so in the legend."""
    results = [g for g in summary["results"] if g[x] is not None]
    attacks = list(dict.fromkeys(g["attack"] for g in results))
    lines = list(dict.fromkeys((g["model"], _search(g)) for g in results))
    search = _search(summary.get("settings", {}))
    fig, axes = _figure(len(attacks), 4, (4, 3.2))
    for ax, attack in zip(axes, attacks):
        mine = [g for g in results if g["attack"] == attack]
        for model, level in lines:
            points = sorted((g["strength"] or 0, g[x], g["bit_accuracy"]) for g in mine
                            if g["model"] == model and _search(g) == level)
            if points:
                label = model if level == search else f"{model} (search {level})"
                ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=label)
        _accuracy_axis(ax, f"{attack} (search {search})", AXIS_LABELS[x], min(g["bit_accuracy"] for g in mine))
    axes[0].legend(fontsize=7)
    _save(fig, path)


AXIS_LABELS = {"psnr": "PSNR (dB)", "flip_ratio": "FLIP / JPEG 75's FLIP"}


def plot_timeline(result: Result, path: Path) -> None:
    """Per-frame bit accuracy of each video: a panel per (video, model) at its first strength, a line per attack."""
    from matplotlib import colormaps

    panels = []
    for video in result.video_inputs:
        for model in dict.fromkeys(r["model"] for r in result.rows if r["input"] == video):
            first = next(r["strength"] for r in result.rows if r["input"] == video and r["model"] == model)
            panels.append((video, model, first))
    fig, axes = _figure(len(panels), 1, (11, 3.6))
    colours = colormaps["tab20"]
    for ax, (video, model, strength) in zip(axes, panels):
        rows = [r for r in result.rows if r["input"] == video and r["model"] == model and r["strength"] == strength]
        for i, attack in enumerate(dict.fromkeys(r["attack"] for r in rows)):
            mine = [r for r in rows if r["attack"] == attack]
            ax.plot([r["frame"] for r in mine], [r["bit_accuracy"] for r in mine], linewidth=1, marker=".",
                    color=colours(i % 20), label=attack)
        _accuracy_axis(ax, f"{video} - {model} (search {_search(rows[0])})", "frame",
                       min(r["bit_accuracy"] for r in rows))
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    _save(fig, path)


def table_rows(summary: dict) -> list[list[str]]:
    """The printed table: one line per (model, strength, attack)."""
    def number(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    return [[g["model"], number(g["strength"], 3), g["attack"], _search(g), str(g["rows"]), number(g["psnr"], 2),
             number(g["ssim"], 4), number(g["flip_ratio"], 3), number(g["bit_accuracy"], 4), number(g["word_ok"], 3),
             f"{g['p_value_median']:.2g}"]
            for g in summary["results"]]


TABLE_HEADER = ["model", "strength", "attack", "search", "rows", "PSNR", "SSIM", "FLIP/JPEG75", "bit accuracy",
                "word ok", "p median"]
