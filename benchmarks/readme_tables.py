"""Write the results tables of README.md and docs/*.md from benchmarks/results/*.json, never by hand.

    python benchmarks/readme_tables.py [--check] [--list]

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``, each on a line of its own, in
README.md or in any docs/*.md page (a name may appear in several files), and is rendered by one function
below from one committed results file (or every file of one benchmark; `models` also reads the cards in
checkpoints/). Every table must appear in at least one file, and every region must name a known table.
``--check`` exits 1 when a file differs from what the results give (tests/test_readme_tables.py runs it);
``--list`` prints which file holds which table.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from default_model import markdown as default_markdown  # noqa: E402
from domain_levers import levers_markdown  # noqa: E402
from robustness import markdown as robustness_table  # noqa: E402
from video_domain import video_domain_markdown  # noqa: E402
from visibility import visibility_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CHECKPOINTS = ROOT / "checkpoints"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REGION = re.compile(r"^<!-- table:([\w-]+) -->\n(.*?)^<!-- /table:\1 -->$", re.S | re.M)
OPENING = re.compile(r"^<!-- table:[\w-]+ -->$", re.M)

FAMILIES = {  # how the docs name each family (the card records the family's registry name)
    "mbrs": "MBRS (Jia et al. 2021)",
    "cin": "CIN (Ma et al. 2022)",
    "dwtcnn": "DWT-CNN (Tavakoli et al.), Haar LL of luma",
    "tsdl": "two-stage separable (Liu et al. 2019)",
    "stegastamp": "StegaStamp (Tancik et al. 2020)",
    "hidden": "HiDDeN (Zhu et al. 2018)",
}


def files() -> list[Path]:
    """The files whose table regions this script fills: README.md and every docs/*.md page."""
    return [README, *sorted(DOCS.glob("*.md"))]


def acceptance_markdown(result: dict) -> str:
    """invisible_default.json: each of the invisible-default issue's targets and whether it is met."""
    lines = [f"`{result['model']}`, the {len(result['photos_tested'])} validation photos of 1.7–4 MP, message "
             f"{result['message']!r}: median PSNR "
             f"{result['median_psnr']} dB (lowest {result['min_psnr']} dB), median FLIP "
             f"{result['median_flip_ratio']} × a JPEG 75 re-save's.", "",
             "| check | met |", "|---|---|"]
    lines += [f"| {check} | {'yes' if met else '**no**'} |" for check, met in result["checks"].items()]
    lines += ["", "| attack | " + " | ".join(result["bit_accuracy"]) + " |", "|---" * (len(result["bit_accuracy"]) + 1) + "|",
              "| bit accuracy | " + " | ".join(f"{v:.4f}" for v in result["bit_accuracy"].values()) + " |"]
    return "\n".join(lines) + "\n"


def robustness_markdown(report: dict) -> str:
    """robustness.json: mean bit accuracy · share of exact codewords per attack, photos and video."""
    return robustness_table(report) + "\n"


def cards() -> list[dict]:
    """The committed model cards, by name."""
    return [json.loads(path.read_text()) | {"name": path.parent.name}
            for path in sorted(CHECKPOINTS.glob("*/card.json"))]


def models_markdown(visibility: dict) -> str:
    """The committed checkpoints (their cards and checkpoints/zoo.json) with their visibility (visibility.json)."""
    zoo = json.loads((CHECKPOINTS / "zoo.json").read_text())
    roles = ({zoo["default"]: "default for images and videos"} if zoo["default"] == zoo["video"]
             else {zoo["default"]: "default for images", zoo["video"]: "default for videos"})
    order = sorted(cards(), key=lambda c: (c["name"] not in roles, c["name"] != zoo["default"], c["name"]))
    lines = ["| name | family | raw bits | text capacity | native size | default strength | strength set for "
             "| median PSNR | median FLIP ÷ JPEG 75's |", "|---" * 9 + "|"]
    for card in order:
        name = f"`{card['name']}`" + (f" ({roles[card['name']]})" if card["name"] in roles else "")
        family = FAMILIES.get(card["family"], card["family"])
        if card.get("domain"):
            family += ", tiled luma + JND domain"
        seen = visibility["marks"].get(card["name"])
        psnr, flip = ("–", "–") if seen is None else (f"{seen['median_psnr']:.1f} dB",
                                                      f"{seen['median_flip_ratio']:.2f}")
        capacity = f"{card['capacity_bytes']} byte" + ("" if card["capacity_bytes"] == 1 else "s")
        size = f"{card['size']} px" + (" tiles" if card.get("domain") else "")
        lines.append(f"| {name} | {family} | {card['bits']} | {capacity} | {size} | {card['strength']:.2f} "
                     f"| {card.get('strength_rule', '–')} | {psnr} | {flip} |")
    return "\n".join(lines) + "\n"


def roundtrip_markdown() -> str:
    """core_roundtrip_<model>.json: exact round trips on the validation photos, false positives, 1080p speed."""
    lines = ["| model | strength | median PSNR (lowest) | exact: PNG / JPEG 90 / JPEG 75 | bit accuracy, JPEG 75 "
             "| false positives (unmarked photos) | 1080p embed / extract |", "|---" * 7 + "|"]
    for path in sorted(RESULTS.glob("core_roundtrip_*.json")):
        result = json.loads(path.read_text())
        s, fp, timing = result["summary"], result["false_positives"], result["timing"]
        photos = len(result["photos"])
        exact = " / ".join(f"{round(s[f'exact_{k}'] * photos)}/{photos}" for k in ("png", "jpeg90", "jpeg75"))
        lines.append(f"| `{s['model']}` | {s['strength']:.2f} | {s['psnr_median']:.1f} dB ({s['psnr_min']:.1f}) "
                     f"| {exact} | {s['bit_accuracy_jpeg75']:.4f} | {fp['detected']} of {fp['photos']} "
                     f"| {timing['embed_s_median'] * 1000:.0f} / {timing['extract_s_median'] * 1000:.0f} ms "
                     f"({timing['threads']} threads) |")
    return "\n".join(lines) + "\n"


def thresholds_markdown() -> str:
    """thresholds_<model>[_s<strength>][_<photo set>].json: mean bit accuracy after attacks outside wmark, run as a
    user would, on the validation photos or another set (the files before the field was added are all val)."""
    results = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("thresholds_*.json"))]
    skip = {"psnr", "median_psnr", "output_marked", "output_unmarked"}
    attacks = list(dict.fromkeys(k for r in results for k in r["means"] if k not in skip))
    lines = ["| model | strength | photos | mean PSNR | " + " | ".join(attacks)
             + " | mean logit size, marked / unmarked |",
             "|---" * (len(attacks) + 5) + "|"]
    for r in results:
        means = r["means"]
        cells = [f"{means[a]:.3f}" if a in means else "–" for a in attacks]
        lines.append(f"| `{r['model']}` | {'card' if r['strength'] is None else r['strength']} "
                     f"| {r['photos']} {r.get('photo_set', 'val')} "
                     f"| {means['psnr']:.1f} dB | " + " | ".join(cells)
                     + f" | {means['output_marked']:.1f} / {means['output_unmarked']:.2f} |")
    return "\n".join(lines) + "\n"


def false_positives_markdown(scan: dict) -> str:
    """false_positives_<model>[_search-<level>].json and scan_speed.json: unmarked items (photos, crops, rescalings,
    turns with a search) flagged, by search level (off when the file predates the field)."""
    runs = [scan["false_positives"]] + [json.loads(path.read_text())
                                        for path in sorted(RESULTS.glob("false_positives_*.json"))]
    lines = ["| model | search | unmarked items (from photos) | FPR | detected | valid codewords | lowest p-value |",
             "|---" * 7 + "|"]
    for r in runs:
        lines.append(f"| `{r['model']}` | {r.get('search', 'off')} | {r['items']:,} ({r['photos']}) | {r['fpr']:g} "
                     f"| {r['detected']} | {r['valid_codewords']} | {r['min_p_value']:g} |")
    return "\n".join(lines) + "\n"


def speed_markdown(result: dict) -> str:
    """speed.json: embed and extract time per image size, video re-encoding fps, and the speed targets."""
    machine, video, targets = result["machine"], result["video"], result["targets"]
    lines = [f"{machine['cores']} cores ({machine['cpu']}), torch {machine['torch']} on {machine['torch_threads']} "
             f"thread(s), load average {' → '.join(map(str, machine['load_average_start_end']))}; "
             f"medians of {result['repeats']} runs.", "", "| image | job | median | fastest |", "|---|---|---|---|"]
    for size, jobs in result["images"].items():
        lines += [f"| {size} | {job} | {t['median_s']:.3f} s | {t['min_s']:.3f} s |" for job, t in jobs.items()]
    lines += ["", "| measure | value | target | met |", "|---|---|---|---|",
              f"| `{video['model']}` marking and re-encoding the clip ({video['video']}; {video['codec']} "
              f"CRF {video['crf']}, preset {video['preset']}) | {video['watermark_reencode_fps']} fps | – | – |",
              f"| a plain PyAV transcode, same settings | {video['plain_transcode_fps']} fps | – | – |",
              f"| re-encode fps ÷ plain fps | {targets['fps_ratio']} | ≥ {targets['fps_ratio_target']} "
              f"| {'yes' if targets['fps_ratio'] >= targets['fps_ratio_target'] else '**no**'} |"]
    ratio = targets.get("embed_1080p_ratio_vs_dwtDct")
    if isinstance(ratio, (int, float)):
        target = targets["embed_1080p_ratio_target"]
        lines.append(f"| `{targets['model']}` 1080p embed time ÷ dwtDct's | {ratio} | ≤ {target} "
                     f"| {'yes' if ratio <= target else '**no**'} |")
    ratio = targets.get("extract_1080p_ratio_vs_dwtDctSvd")
    if isinstance(ratio, (int, float)):
        target = targets["extract_1080p_ratio_target"]
        lines.append(f"| `{targets['model']}` 1080p extract time (marked photo) ÷ dwtDctSvd's | {ratio} | ≤ {target} "
                     f"| {'yes' if ratio <= target else '**no**'} |")
    return "\n".join(lines) + "\n"


def presence_markdown(result: dict) -> str:
    """presence.json: each model's mark_present threshold, its clean items and recall on marked photos."""
    attacks = result["attacks"]
    lines = ["| model | threshold | clean items | largest clean | FPR (95 %) | "
             + " | ".join(f"recall: {a}" for a in attacks) + " |", "|---" * (5 + len(attacks)) + "|"]
    for name, r in result["models"].items():
        usable = r["recall"]["identity"] == 1.0
        lines.append(f"| `{name}` | {r['threshold'] if usable else 'none (no separation)'} | {r['clean_items']} "
                     f"| {r['clean_max']} | ≤ {r['fpr_95']:.2%} | "
                     + " | ".join(f"{r['recall'][a]:.2f}" for a in attacks) + " |")
    return "\n".join(lines) + "\n"


def search_markdown(result: dict) -> str:
    """search.json: per edit and search level, the exact messages and bit accuracy; per level, the 1080p extraction
    time against dwtDctSvd's decode and the default chosen."""
    levels = list(result["searches"])
    summary, choice = result["summary"], result["choice"]
    edits = list(dict.fromkeys(key.split("/", 1)[1] for key in summary))
    lines = [f"`{result['model']}`; each cell: exact messages, mean bit accuracy (**bold**: passes, ≥ 0.95 and "
             "≥ 9 of 10 exact):", "", "| edit | " + " | ".join(f"`{level}`" for level in levels) + " |",
             "|---|" + "---|" * len(levels)]
    for edit in edits:
        cells = []
        for level in levels:
            r = summary[f"{level}/{edit}"]
            if edit == "unmarked":
                cells.append(f"{r['false_detections']} false of {r['photos']}")
            else:
                cell = f"{r['exact']:.2f}, {r['bit_acc']:.4f}"
                cells.append(f"**{cell}**" if r["passes"] else cell)
        lines.append(f"| {'unmarked photo' if edit == 'unmarked' else edit} | " + " | ".join(cells) + " |")
    seconds = result["speed_1080p_seconds"]
    yardstick = seconds["dwtDctSvd decode"]
    lines += ["", f"1080p extraction, one thread (dwtDctSvd decodes the same photo in {yardstick:.2f} s):",
              "", "| search | poses counted in the p-value | marked | unmarked | worst ÷ dwtDctSvd | edits passed "
              "| exact shares summed over the edits |", "|---|---|---|---|---|---|---|"]
    for level in levels:
        figures = choice["levels"][level]
        lines.append(f"| `{level}` | {result['searches'][level]['hypotheses']} | {seconds[f'{level} marked']:.2f} s "
                     f"| {seconds[f'{level} unmarked']:.2f} s | {figures['ratio_to_dwtDctSvd']:.2f} "
                     f"| {len(figures['edits_passed'])} | {figures['exact_reads']:.1f} |")
    lines += ["", f"Default: **`{choice['default']}`** (the most edits passed with the {choice['budget']}; "
              "on a tie, the largest sum of exact shares)."]
    return "\n".join(lines) + "\n"


def small_photos_markdown(result: dict) -> str:
    """small_photos.json: per edit, size and method, the share of photos read exactly and the mean bit accuracy;
    per size and method, read time, PSNR, FLIP ratio and the default's false detections on the unmarked photos."""
    settings, summary = result["settings"], result["summary"]
    methods, must = settings["methods"], set(settings["must_read"])
    names = [f"`{m}`" if m == settings["model"] else m.split(":")[-1] for m in methods]
    sets = {kind: sum(p.startswith(f"{kind}/") for p in settings["photos"]) for kind in ("val", "unseen")}
    label = {"768x512": "768×512", "1mp": "~1 MP"}
    machine = result["machine"]
    count = len(settings["photos"])
    lines = [f"{count} photo{'' if count == 1 else 's'} ({sets['val']} validation, {sets['unseen']} unseen: "
             f"{', '.join(p.split('/', 1)[1] for p in settings['photos'])}); `{settings['model']}` (the default, "
             f"message {settings['message']!r}) beside invisible-watermark's dwtDct and dwtDctSvd (64 random bits). "
             "Each cell: share of photos read exactly (mean bit accuracy); † must read on every photo. Reads timed "
             f"on {machine['cpu_count']} cores, torch on {machine['torch_threads']} thread(s).", "",
             "| edit | " + " | ".join(f"{label[size]} {name}" for size in summary for name in names) + " |",
             "|---" * (1 + len(summary) * len(methods)) + "|"]
    for edit in settings["edits"]:
        cells = [summary[size]["methods"][m]["edits"][edit] for size in summary for m in methods]
        lines.append(f"| {edit}{' †' if edit in must else ''} | "
                     + " | ".join(f"{c['exact']:.0%} ({c['bit_acc']:.3f})" for c in cells) + " |")
    rows = {"median read (s)": lambda m: f"{m['median_read_seconds']:.2f}",
            "median PSNR (dB)": lambda m: f"{m['median_psnr']:.1f}",
            "median FLIP ÷ JPEG 75's": lambda m: f"{m['median_flip_ratio']:.2f}"}
    for row, cell in rows.items():
        lines.append(f"| {row} | " + " | ".join(cell(summary[size]["methods"][m]) for size in summary
                                                for m in methods) + " |")
    lines.append("| false detections, unmarked photos | " + " | ".join(
        f"{summary[size]['false_detections']} of {summary[size]['photos']}" if m == settings["model"] else "–"
        for size in summary for m in methods) + " |")
    default = {size: summary[size]["methods"][settings["model"]]["edits"] for size in summary}
    if all("read_ratio" in cell for edits in default.values() for cell in edits.values()):
        lines += ["", f"Read time of `{settings['model']}` per edit (the whole `extract` call at the default search, "
                      "median seconds), and the median over photos of its ratio to dwtDctSvd's read of the same file:",
                  "", "| edit | " + " | ".join(f"{label[size]} s | {label[size]} ÷ dwtDctSvd" for size in default) + " |",
                  "|---" * (1 + 2 * len(default)) + "|"]
        lines += [f"| {edit} | " + " | ".join(f"{default[size][edit]['median_seconds']:.2f} | "
                                             f"{default[size][edit]['read_ratio']:.1f}×" for size in default) + " |"
                  for edit in settings["edits"]]
    return "\n".join(lines) + "\n"


def size_bands_markdown(result: dict) -> str:
    """size_bands.json: per variant of the default's bands and photo size, the share of photos read exactly after
    each edit, and the median PSNR and FLIP ratio."""
    settings, summary = result["settings"], result["summary"]
    label = {"768x512": "768×512", "1mp": "~1 MP"}
    count = len(settings["photos"])
    columns = [(variant, size) for variant in summary for size in settings["sizes"]]
    name = {"none": "fine + coarse (before)"} | {v: f"+ {v.replace('@', ' tiles at ')}" for v in summary if v != "none"}
    lines = [f"{count} validation photos, `{settings['model']}` at its card's strength, message "
             f"{settings['message']!r}, the default search. Each cell: share of photos read exactly.", "",
             "| edit | " + " | ".join(f"{name[v]}, {label[s]}" for v, s in columns) + " |",
             "|---" * (1 + len(columns)) + "|"]
    for edit in settings["edits"]:
        lines.append(f"| {edit} | " + " | ".join(f"{summary[v][s]['exact'][edit]:.0%}" for v, s in columns) + " |")
    lines.append("| median PSNR (dB) | " + " | ".join(f"{summary[v][s]['median_psnr']:.1f}" for v, s in columns) + " |")
    lines.append("| median FLIP ÷ JPEG 75's | "
                 + " | ".join(f"{summary[v][s]['median_flip_ratio']:.2f}" for v, s in columns) + " |")
    for edit in summary[columns[0][0]][columns[0][1]]["median_band_bits"]:
        lines.append(f"| bits right by band alone after {edit} (fine / coarse / middle, median) | " + " | ".join(
            " / ".join(f"{b:.2f}" for b in summary[v][s]["median_band_bits"][edit]) for v, s in columns) + " |")
    return "\n".join(lines) + "\n"


def template_pitch_markdown(result: dict) -> str:
    """template_pitch.json: per variant of the template's band and photo size, photos whose template was found and
    photos read exactly after each edit, and the median FLIP ratio."""
    settings, summary = result["settings"], result["summary"]
    label = {"768x512": "768×512", "1mp": "~1 MP"}
    columns = list(summary)
    lines = [f"{len(settings['photos'])} validation photos, `{settings['model']}` at its card's strength, the default "
             "search. Each cell: photos whose template was found / photos read exactly.", "",
             "| edit | " + " | ".join(f"{c.split(', ')[0]}, {label[c.split(', ')[1]]}" for c in columns) + " |",
             "|---" * (1 + len(columns)) + "|"]
    for edit in settings["edits"]:
        lines.append(f"| {edit} | " + " | ".join(
            f"{summary[c][f'{edit} template']} / {summary[c][f'{edit} exact']}" for c in columns) + " |")
    lines.append("| median FLIP ÷ JPEG 75's | " + " | ".join(f"{summary[c]['median_flip_ratio']:.3f}" for c in columns)
                 + " |")
    return "\n".join(lines) + "\n"


def domain_training_markdown(result: dict) -> str:
    """domain_training.json: each model at the same median FLIP ratio, its strength and PSNR, and the mean bit accuracy
    of its codeword read as received after each edit, per long side."""
    settings, rows = result["settings"], result["rows"]
    attacks = settings["attacks"]
    lines = [f"{len(settings['photos'])} validation photos resized to each long side, each model at a median FLIP "
             f"{settings['flip']} x a JPEG 75 re-save's; mean bit accuracy of the codeword read as received (no "
             "search).", "",
             "| long side | model | strength | median PSNR (dB) | " + " | ".join(f"`{a}`" for a in attacks) + " |",
             "|---" * (4 + len(attacks)) + "|"]
    for row in rows:
        lines.append(f"| {row['long_side']} px | `{row['model']}` | {row['strength']:.4f} | {row['psnr']:.1f} | "
                     + " | ".join(f"{row[f'bit_acc[{a}]']:.4f}" for a in attacks) + " |")
    return "\n".join(lines) + "\n"


def sync_stages_markdown(result: dict) -> str:
    """sync_stages.json: per edit and size, photos whose template was found, read at their true placement and read by
    the default search, and the template's median peaks with and without the edit's JPEG."""
    settings, summary = result["settings"], result["summary"]
    label = {"768x512": "768×512", "1mp": "~1 MP"}
    lines = [f"{len(settings['photos'])} validation photos, `{settings['model']}` at its card's strength; a read at the "
             f"true placement counts at the false-positive rate {settings['fpr']:g} with the whole search's factor.", "",
             "| edit | size | template found | read at the true placement | read by the search | lost by the search "
             "(template missing) | template peaks (without the JPEG) | search's median s |",
             "|---|---|---|---|---|---|---|---|"]
    for column, entry in summary.items():
        edit, size = column.split(", ")
        lines.append(f"| {edit} | {label[size]} | {entry['template']} | {entry['at_truth']} | {entry['exact']} | "
                     f"{entry['lost_by_search']} ({entry['lost_by_search_template']}) | {entry['median_peaks']:.1f} "
                     f"({entry['median_peaks_png']:.1f}) | {entry['median_seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def json_fields_markdown() -> str:
    """The JSON reports' field names, types and meanings, from wmark/interface/vocabulary.py."""
    from wmark.interface.vocabulary import FIELDS

    lines = ["| field | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {' or '.join(kinds)} | {meaning} |" for name, (kinds, meaning) in sorted(FIELDS.items())]
    return "\n".join(lines) + "\n"


TABLES = {
    "json-fields": (None, json_fields_markdown),
    "visibility": ("visibility.json", visibility_markdown),
    "levers": ("domain_levers.json", levers_markdown),
    "default": ("default_model.json", default_markdown),
    "acceptance": ("invisible_default.json", acceptance_markdown),
    "robustness": ("robustness.json", robustness_markdown),
    "models": ("visibility.json", models_markdown),
    "roundtrip": (None, roundtrip_markdown),  # every core_roundtrip_<model>.json
    "thresholds": (None, thresholds_markdown),  # every thresholds_<model>.json
    "false-positives": ("scan_speed.json", false_positives_markdown),
    "speed": ("speed.json", speed_markdown),
    "presence": ("presence.json", presence_markdown),
    "search": ("search.json", search_markdown),
    "video-domain": ("video_domain.json", video_domain_markdown),
    "small-photos": ("small_photos.json", small_photos_markdown),
    "size-bands": ("size_bands.json", size_bands_markdown),
    "template-pitch": ("template_pitch.json", template_pitch_markdown),
    "domain-training": ("domain_training.json", domain_training_markdown),
    "sync-stages": ("sync_stages.json", sync_stages_markdown),
}


def render(text: str, tables: dict[str, str], where: str = "") -> str:
    """``text`` with every table region rewritten; an unknown region name is an error."""
    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in tables:
            raise SystemExit(f"{where}: unknown table region <!-- table:{name} --> (known: {', '.join(tables)})")
        return f"<!-- table:{name} -->\n{tables[name]}<!-- /table:{name} -->"
    return REGION.sub(fill, text)


def rendered() -> dict[Path, tuple[str, str]]:
    """Every file's current text and the text the results give; every table must be used somewhere."""
    tables = {name: function(json.loads((RESULTS / source).read_text())) if source else function()
              for name, (source, function) in TABLES.items()}
    out, used = {}, set()
    for path in files():
        current = path.read_text()
        names = [m.group(1) for m in REGION.finditer(current)]
        if len(names) != len(OPENING.findall(current)):
            raise SystemExit(f"{path.relative_to(ROOT)}: a <!-- table:NAME --> region lacks its <!-- /table:NAME -->")
        used |= set(names)
        out[path] = current, render(current, tables, str(path.relative_to(ROOT)))
    missing = set(TABLES) - used
    if missing:
        raise SystemExit(f"no file has a region for: {', '.join(sorted(missing))}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file's tables are not what the results give")
    parser.add_argument("--list", action="store_true", help="print which file holds which table, and change nothing")
    args = parser.parse_args()
    if args.list:
        for path in files():
            names = [m.group(1) for m in REGION.finditer(path.read_text())]
            if names:
                print(f"{path.relative_to(ROOT)}: {', '.join(names)}")
        return
    stale = []
    for path, (current, wanted) in rendered().items():
        if wanted != current:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(wanted)
    if args.check and stale:
        print(f"tables differ from benchmarks/results in {', '.join(map(str, stale))}: "
              "run python benchmarks/readme_tables.py")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
