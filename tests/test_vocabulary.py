"""Every JSON report speaks one vocabulary (wmark/interface/vocabulary.py): each command run with --json, each field checked
by name and type, and errors as JSON too."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli import app
from wmark.interface.vocabulary import FIELDS, misnamed

runner = CliRunner()
VIDEO_MODEL = "mbrs-64"  # whole-frame: reads the 160x96 fixture clip


def run_json(*args, code: int = 0) -> dict:
    result = runner.invoke(app, [str(a) for a in args] + ["--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def reports(photo, clip, tmp_path_factory) -> dict[str, dict]:
    """One JSON report of every command and mode: single files, batches with a failed item, videos, errors."""
    out = tmp_path_factory.mktemp("vocabulary")
    marked, marked_clip = out / "marked.png", out / "marked.mp4"
    missing, broken = out / "missing.png", out / "broken.jpg"
    broken.write_text("not a picture")
    found = {
        "embed": run_json("embed", photo, marked, "--message", "hi", "--flip"),
        "embed video": run_json("embed", clip, marked_clip, "-m", VIDEO_MODEL, "--message", "hi"),
        "embed batch": run_json("embed", photo, missing, out / "batch", "--message", "hi", code=2),
        "extract": run_json("extract", marked),
        "extract video": run_json("extract", marked_clip, "-m", VIDEO_MODEL, "--per-frame"),
        "extract batch": run_json("extract", marked, missing, code=2),
        "detect": run_json("detect", marked, "--expect", "hi"),
        "detect batch": run_json("detect", marked, photo, "--search", "off", code=1),
        "models": run_json("models"),
        "demo": run_json("demo", "--out", out / "demo"),
        "bench": run_json("bench", photo, "-a", "jpeg:quality=75", "--fail-under", "jpeg:quality=75=0.5",
                          "--out", out / "bench"),
        "scan": run_json("scan", marked, marked_clip, broken, "--workers", "0", "--report", out / "scan.jsonl"),
        "error": run_json("extract", missing, code=2),
    }
    found["scan rows"] = [json.loads(line) for line in (out / "scan.jsonl").read_text().splitlines()]
    return found


def test_every_json_report_uses_the_shared_field_names(reports):
    wrong = {command: misnamed(report) for command, report in reports.items()}
    assert not {command: fields for command, fields in wrong.items() if fields}, json.dumps(wrong, indent=1)


@pytest.mark.parametrize("command, fields", [
    ("embed", {"path", "input", "model", "psnr", "ssim", "flip", "flip_ratio", "codeword", "bit_accuracy"}),
    ("embed video", {"path", "input", "psnr", "psnr_min", "codeword", "bit_accuracy"}),
    ("extract", {"path", "model", "detected", "message", "codeword", "p_value"}),
    ("detect", {"path", "model", "detected", "p_value", "fpr", "method"}),
    ("demo", {"psnr", "flip", "flip_ratio", "out"}),
    ("scan", {"files_scanned", "files_detected", "files_failed", "seconds"}),
])
def test_the_same_quantity_has_the_same_name_in_every_command(reports, command, fields):
    assert fields <= set(reports[command])


def test_errors_are_json_under_json(reports):
    assert set(reports["error"]) == {"error"} and "missing.png" in reports["error"]["error"]
    for batch in ("embed batch", "extract batch"):
        (failed,) = reports[batch]["errors"]
        assert failed["path"].endswith("missing.png") and failed["error"]


def test_a_usage_error_is_json_under_json(photo):
    result = runner.invoke(app, ["extract", str(photo), "--fpr", "2", "--json"])
    assert result.exit_code == 2 and "false-positive rate" in json.loads(result.stdout)["error"]
    command = [sys.executable, "-m", "wmark", "extract", str(photo), "--no-such-option", "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "--no-such-option" in json.loads(done.stdout)["error"]
    assert done.stderr.strip().splitlines() == [f"error: {json.loads(done.stdout)['error']}"]


def test_the_vocabulary_catches_an_unknown_name_and_a_wrong_type():
    assert misnamed({"psnr_db": 40.0}) == ["psnr_db: not a field of wmark.interface.vocabulary"]
    assert misnamed({"results": [{"detected": 3}]}) == ["results.detected: a number, not a true/false"]
    assert misnamed({"files": {"marked": "a.png"}, "psnr": None}) == []
    assert all(meaning and kinds for kinds, meaning in FIELDS.values())
