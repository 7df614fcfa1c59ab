"""Write the README's results tables from benchmarks/results/*.json, never by hand.

    python benchmarks/readme_tables.py [--check]

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in README.md and is
rendered by one function below from one committed results file. ``--check`` exits 1 when the README
differs from what the results give (tests/test_readme_tables.py runs it).
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
from visibility import visibility_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


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


TABLES = {
    "visibility": ("visibility.json", visibility_markdown),
    "levers": ("domain_levers.json", levers_markdown),
    "default": ("default_model.json", default_markdown),
    "acceptance": ("invisible_default.json", acceptance_markdown),
}


def render(readme: str) -> str:
    """``readme`` with every table region rewritten from its results file."""
    for name, (source, function) in TABLES.items():
        table = function(json.loads((RESULTS / source).read_text()))
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- table:{name} --> region")
        readme = pattern.sub(lambda m: m.group(1) + table + m.group(2), readme)
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not what the results give")
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print("README.md tables differ from benchmarks/results: run python benchmarks/readme_tables.py")
            raise SystemExit(1)
        return
    README.write_text(wanted)


if __name__ == "__main__":
    main()
