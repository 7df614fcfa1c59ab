"""The wmark command line, in-process with CliRunner, plus one real subprocess call."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from wmark import zoo

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_user_error(result, match):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["models", "attacks"])
def test_listing_commands_import_no_torch(command):
    """Listing cards and attacks reads JSON only, so it starts fast (no torch import)."""
    probe = ("import sys; from typer.testing import CliRunner; from cli import app; "
             f"r = CliRunner().invoke(app, [{command!r}, '--json']); "
             "assert r.exit_code == 0, r.output; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_models_json():
    result = run("models", "--json")
    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    assert listing["default"] in [m["name"] for m in listing["models"]]
    for entry in listing["models"]:
        assert {"name", "family", "bits", "data_bits", "native_size", "strength"} <= set(entry)


def test_embed_extract_detect_json(photo, tmp_path):
    out = tmp_path / "marked.png"
    embedded = json.loads(run("embed", photo, out, "--message", "hi!", "--json").stdout)
    assert {"path", "input", "model", "psnr", "ssim", "codeword"} <= set(embedded) and embedded["psnr"] >= 38
    extracted = json.loads(run("extract", out, "--json").stdout)
    assert extracted["detected"] is True and extracted["message"] == "hi!"
    assert set(extracted["codeword"]) <= {"0", "1"} and extracted["p_value"] <= 1e-6
    assert run("detect", out).exit_code == 0
    assert run("detect", photo).exit_code == 1
    assert run("detect", out, "--expect", "hi!", "--json").exit_code == 0


def test_raw_bits_are_returned_unchanged(photo, tmp_path):
    listing = json.loads(run("models", "--json").stdout)
    bits_count = next(m["bits"] for m in listing["models"] if m["name"] == listing["default"])
    bits = ("0110" * bits_count)[:bits_count]
    run("embed", photo, tmp_path / "raw.png", "--codeword", bits)
    assert json.loads(run("extract", tmp_path / "raw.png", "--json").stdout)["codeword"] == bits


def test_batch_reports_bad_items_and_goes_on(photo, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(photo, inputs / "a.jpg")
    shutil.copy(photo, inputs / "b.jpg")
    (inputs / "bad.png").write_bytes(b"not an image")
    result = run("embed", inputs, tmp_path / "out", "--message", "hi!", "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert len(report["results"]) == 2 and len(report["errors"]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.jpg"]
    extracted = json.loads(run("extract", tmp_path / "out", "--json").stdout)
    assert [r["message"] for r in extracted["results"]] == ["hi!", "hi!"]


def _bad_inputs(tmp_path, photo):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[:3000])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 200)).save(small)
    return {
        "missing": (tmp_path / "missing.png", "missing.png"),
        "empty": (empty, "empty"),
        "truncated": (truncated, "truncated"),
        "not an image": (text, "neither an image nor a video"),
        "too small": (small, "at least 64 px"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "not an image", "too small"])
@pytest.mark.parametrize("command", ["embed", "extract", "detect"])
def test_bad_input_files(command, case, photo, tmp_path):
    path, match = _bad_inputs(tmp_path, photo)[case]
    before = path.read_bytes() if path.exists() else None
    out = tmp_path / "out.png"
    args = [command, path] + ([out, "--message", "hi!"] if command == "embed" else [])
    assert_user_error(run(*args), match)
    assert not out.exists()
    assert (path.read_bytes() if path.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_unknown_model(photo, tmp_path):
    assert_user_error(run("extract", photo, "-m", "nope"), "unknown model")


def test_too_long_message(photo, tmp_path):
    out = tmp_path / "o.png"
    assert_user_error(run("embed", photo, out, "--message", "x" * 200), "at most")
    assert not out.exists()


def test_corrupt_checkpoint(photo, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(zoo.find_card(None).path, folder)
    (folder / zoo.WEIGHTS).write_bytes(b"garbage")
    assert_user_error(run("extract", photo, "-m", folder), "sha256")


def test_refuses_to_overwrite_input(photo, tmp_path):
    copy = tmp_path / "in.png"
    Image.open(photo).save(copy)
    before = copy.read_bytes()
    assert_user_error(run("embed", copy, copy, "--message", "hi!"), "--force")
    assert copy.read_bytes() == before
    assert run("embed", copy, copy, "--message", "hi!", "--force").exit_code == 0


def test_no_payload_is_an_error(photo, tmp_path):
    assert_user_error(run("embed", photo, tmp_path / "o.png"), "payload")


def test_demo(tmp_path):
    result = run("demo", "--out", tmp_path / "demo", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    marked, jpeg75, original = report["results"]
    assert marked["message"] == report["message"] and original["detected"] is False
    files = dict(report["files"])
    assert Image.open(files.pop("flat_crop")).size == (3 * 256, 256)  # original | marked | difference, 1:1
    for path in files.values():
        assert Image.open(path).size == (1280, 853)
    assert report["flip"] > 0 and report["flip_ratio"] > 0


def test_installed_console_script(photo, tmp_path):
    """One real process: the installed `wmark` (or `python -m wmark`) round-trips a message."""
    out = tmp_path / "marked.png"
    command = [shutil.which("wmark")] if shutil.which("wmark") else [sys.executable, "-m", "wmark"]
    subprocess.run(command + ["embed", str(photo), str(out), "--message", "ok"], check=True, capture_output=True)
    done = subprocess.run(command + ["extract", str(out), "--json"], check=True, capture_output=True, text=True)
    assert json.loads(done.stdout)["message"] == "ok"
    bad = subprocess.run(command + ["extract", str(tmp_path / "nope.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_batch_keeps_subfolders_and_refuses_a_file_as_output(photo, tmp_path):
    inputs = tmp_path / "in"
    for sub in ("x", "y"):
        (inputs / sub).mkdir(parents=True)
        shutil.copy(photo, inputs / sub / "p.jpg")
    result = run("embed", inputs, tmp_path / "out", "--message", "hi!")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "x" / "p.jpg").is_file() and (tmp_path / "out" / "y" / "p.jpg").is_file()
    (tmp_path / "file.png").write_bytes(b"")
    assert_user_error(run("embed", photo, photo, tmp_path / "file.png", "--message", "hi!"), "must be a folder")

