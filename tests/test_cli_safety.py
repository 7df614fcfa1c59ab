"""No silent failures: embed verifies its output and refuses double marks and damaged results; clear reports."""
from __future__ import annotations

import json
import re

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def test_embed_verifies_its_written_output(photo, tmp_path):
    report = json.loads(run("embed", photo, tmp_path / "m.png", "--message", "hi", "--json").stdout)
    assert report["verified"] is True and report["bit_accuracy"] == 1.0


def test_an_output_that_does_not_read_back_exits_1_and_is_kept(photo, tmp_path):
    out = tmp_path / "faint.png"
    result = run("embed", photo, out, "--message", "hi", "--strength", "0.005", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["verified"] is False
    assert "does not read back" in one_error_line(result)
    assert out.is_file()  # kept for inspection


def test_no_verify_skips_the_check(photo, tmp_path):
    result = run("embed", photo, tmp_path / "faint.png", "--message", "hi", "--strength", "0.005", "--no-verify",
                 "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["verified"] is None


def test_a_greyscale_photo_verifies_or_says_why(photo, tmp_path):
    """The newcomer's case: a greyscale PNG used to be marked 'successfully' and then read nothing."""
    grey = tmp_path / "grey.png"
    Image.open(photo).convert("L").save(grey)
    for model in ("mbrs-64-tiled", "mbrs-64"):
        result = run("embed", grey, tmp_path / f"{model}.png", "-m", model, "--message", "abc", "--json")
        report = json.loads(result.stdout)
        assert (result.exit_code, report["verified"]) in {(0, True), (1, False)}, result.output
        if report["verified"]:
            assert json.loads(run("extract", tmp_path / f"{model}.png", "-m", model, "--json").stdout)["message"] == "abc"


def test_batch_embed_flags_unverified_items(photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(photo.read_bytes())
    result = run("embed", folder, tmp_path / "out", "--message", "hi", "--strength", "0.005", "--json")
    assert result.exit_code == 1
    assert [r["verified"] for r in json.loads(result.stdout)["results"]] == [False, False]


def test_marking_a_marked_image_again_is_refused_unless_forced(photo, tmp_path):
    marked, again = tmp_path / "m.png", tmp_path / "again.png"
    assert run("embed", photo, marked, "--message", "one").exit_code == 0
    refused = run("embed", marked, again, "--message", "two")
    assert refused.exit_code == 2 and "already carries" in one_error_line(refused) and not again.exists()
    other_key = run("embed", marked, tmp_path / "k.png", "--message", "two", "--key", "k")
    assert other_key.exit_code == 2 and "another key" in one_error_line(other_key)  # seen by mark_present
    assert run("embed", marked, again, "--message", "two", "--force").exit_code in (0, 1)
    assert again.exists()


def test_a_result_under_the_psnr_floor_is_refused_unless_forced(photo, tmp_path):
    out = tmp_path / "loud.png"
    refused = run("embed", photo, out, "--message", "hi", "--strength", "100")
    assert refused.exit_code == 2 and "25 dB floor" in one_error_line(refused) and not out.exists()
    forced = run("embed", photo, out, "--message", "hi", "--strength", "100", "--force", "--no-verify", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["psnr"] < 25


def test_a_keyed_mark_read_without_the_key_is_present_but_not_decoded(photo, tmp_path):
    marked = tmp_path / "keyed.png"
    assert run("embed", photo, marked, "--message", "hi", "--key", "secret").exit_code == 0
    without = json.loads(run("extract", marked, "--json").stdout)
    assert without["detected"] is False and without["mark_present"] is True
    assert json.loads(run("extract", photo, "--json").stdout)["mark_present"] is False
    assert json.loads(run("detect", marked, "--json").stdout)["mark_present"] is True
    assert "wrong or missing --key" in run("extract", marked).stderr
    summary = json.loads(run("scan", marked, photo, "-m", "mbrs-64-tiled", "--workers", "0", "--json").stderr
                         .strip().splitlines()[-1])
    assert (summary["files_detected"], summary["files_present"], summary["files_clean"]) == (0, 1, 1)


def test_a_missing_output_folder_is_named(photo, tmp_path):
    result = run("embed", photo, tmp_path / "nowhere" / "m.png", "--message", "hi")
    assert result.exit_code == 2 and "does not exist" in one_error_line(result)


def test_a_multibyte_message_error_counts_characters_and_bytes(photo, tmp_path):
    result = run("embed", photo, tmp_path / "m.png", "--message", "\N{GRINNING FACE}" * 4)
    line = one_error_line(result)
    assert result.exit_code == 2 and "4-character message" in line and "16 bytes" in line and "UTF-8" in line


def test_detect_takes_several_paths(photo, tmp_path):
    marked = tmp_path / "m.png"
    run("embed", photo, marked, "--message", "hi")
    result = run("detect", photo, marked, "--json")
    assert result.exit_code == 1  # one of them is not marked
    assert [r["detected"] for r in json.loads(result.stdout)["results"]] == [False, True]
    assert run("detect", marked, marked).exit_code == 0


def test_scan_json_keeps_stdout_to_rows(photo, tmp_path):
    result = run("scan", photo, "--workers", "0", "--json")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["path"].endswith("photo.jpg")
    assert "files_scanned" in json.loads(result.stderr.strip().splitlines()[-1])


COMMANDS = ["embed", "extract", "detect", "models", "attacks", "demo", "train", "bench", "scan"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_type_placeholders(command):
    """Options show their metavar and flags none. (Typer 0.29 itself labels positional arguments with their
    type, e.g. PATH <list[Path]>; that part is left to it.)"""
    text = run(command, "--help").stdout
    usage, options = text.splitlines()[0], text.split("Options:")[1]
    assert not re.search(r"<[a-z]", options), options
    assert not re.search(r"\{[a-z_]+\}", usage), usage  # Python parameter names in the usage line


def test_models_says_byte_not_bytes_for_one():
    assert "1 bytes" not in run("models").stdout


def test_a_small_image_gets_a_warning_and_a_large_one_none(photo, tmp_path):
    small = run("embed", photo, tmp_path / "small.png", "--message", "hi", "--json")  # 512 x 288
    assert small.exit_code == 0 and "too small" in json.loads(small.stdout)["warning"]
    assert small.stderr.strip().startswith("warning:")
    Image.open(photo).resize((1024, 576)).save(tmp_path / "large.png")
    large = run("embed", tmp_path / "large.png", tmp_path / "large_marked.png", "--message", "hi", "--json")
    assert large.exit_code == 0 and json.loads(large.stdout)["warning"] is None and not large.stderr.strip()


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("wmark ")
