"""The benchmark engine and `wmark bench`: rows, replayed attacks, bad inputs, CI thresholds."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
from typer.testing import CliRunner

import attacks
from cli import app
from wmark import zoo
from wmark.bench import engine as bench
from wmark.bench import report as bench_report
from wmark.errors import WmarkError

CLIP = Path(__file__).parents[1] / "fixtures" / "clip.mp4"
GRID = ["identity", "jpeg:quality=50", "crop:scale=0.8", "h264:crf=28"]
runner = CliRunner()


@pytest.fixture(scope="module")
def models(untrained_checkpoint):
    return bench.load_models(["mbrs-64", str(untrained_checkpoint)], "cpu")


@pytest.fixture(scope="module")
def result(models, photo):
    return bench.run([photo, CLIP], models, GRID, frames=3, device="cpu")


def test_rows_cover_model_attack_input_frame(result, models):
    assert set(bench.COLUMNS) <= set(result.rows[0])
    keys = {(r["model"], r["attack"], r["input"], r["frame"]) for r in result.rows}
    expected = {(m.name, a, i, f) for m in models for a in GRID
                for i, frames in (("photo.jpg", [0]), ("clip.mp4", [0, 10, 19])) for f in frames}
    assert keys == expected and len(result.rows) == len(expected)
    assert result.video_inputs == ["clip.mp4"] and result.errors == []
    mbrs = [r for r in result.rows if r["model"] == "mbrs-64"]
    assert all(r["strength"] == models[0].card.strength and 35 < r["psnr"] < 50 and 0 < r["ssim"] <= 1 for r in mbrs)
    clean = [r for r in mbrs if r["attack"] == "identity"]
    assert all(r["bit_accuracy"] == 1 and r["word_ok"] and r["p_value"] < 1e-15 for r in clean)


def test_attack_params_drawn_once_and_replayed_on_every_model(models, photo, monkeypatch):
    seen = []
    original = bench._attack

    def spy(attack, x, cover, params, clip):
        seen.append((attack.label(), id(params), (int(params["top"][0]), int(params["left"][0]))))
        return original(attack, x, cover, params, clip)

    monkeypatch.setattr(bench, "_attack", spy)
    bench.run([photo], models, ["crop:scale=0.5"], seed=3, device="cpu")
    again = seen[:]
    seen.clear()
    bench.run([photo], models, ["crop:scale=0.5"], seed=3, device="cpu")
    assert len(again) == len(models) and len({s[1:] for s in again}) == 1  # one params object for both models
    assert [s[2] for s in seen] == [s[2] for s in again]  # and the same box on every run
    assert bench.stable_seed(0, "photo.jpg", "crop:scale=0.5", "default") == 8233896787737726485  # sha256-based: fixed forever


def test_strength_sweep_trades_quality(photo):
    model = bench.load_models(["mbrs-64"], "cpu")
    rows = bench.run([photo], model, ["identity"], strengths=[0.5, 2.0], device="cpu").rows
    by_strength = {r["strength"]: r["psnr"] for r in rows}
    assert set(by_strength) == {0.5, 2.0} and by_strength[0.5] > by_strength[2.0] + 6
    with pytest.raises(WmarkError, match="positive"):
        bench.run([photo], model, ["identity"], strengths=[-1.0], device="cpu")


def test_card_strength_requested_twice_runs_once(photo, untrained_checkpoint):
    model = bench.load_models([str(untrained_checkpoint)], "cpu")  # its card's strength is 1.0
    rows = bench.run([photo], model, ["identity"], strengths=[0.5, 1.0, None], device="cpu").rows
    assert [r["strength"] for r in rows] == [0.5, 1.0]


def test_bad_input_is_reported_and_the_run_goes_on(models, photo, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    got = bench.run([bad, photo], models[:1], ["identity"], device="cpu")
    assert [e["input"] for e in got.errors] == [str(bad)]
    assert {r["input"] for r in got.rows} == {"photo.jpg"}
    with pytest.raises(WmarkError, match="no input could be benchmarked"):
        bench.run([bad], models[:1], ["identity"], device="cpu")


def test_default_grid_names_real_attacks():
    for spec in bench.DEFAULT_ATTACKS:
        attacks.create(spec)
    assert set(bench.VIDEO_ATTACKS) < set(bench.DEFAULT_ATTACKS)


def test_summary_means_and_outputs(result, tmp_path):
    summary = bench.summarize(result)
    group = next(g for g in summary["results"] if g["model"] == "mbrs-64" and g["attack"] == "identity")
    assert group["rows"] == 4 and group["bit_accuracy"] == 1.0 and group["word_ok"] == 1.0
    assert set(summary["speed"]["models"]) == {"mbrs-64", "tiny"} and summary["settings"]["device"] == "cpu"
    bench_report.write_outputs(result, summary, tmp_path)
    with open(tmp_path / "frames.csv") as f:
        assert len(list(csv.DictReader(f))) == len(result.rows)
    assert json.loads((tmp_path / "summary.json").read_text())["results"] == summary["results"]
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "timeline.png").stat().st_size > 0


@pytest.mark.parametrize("text", ["jpeg:quality=50", "jpeg:quality=50=1.5", "jpeg:quality=50=x", "=0.5"])
def test_bad_threshold(text):
    with pytest.raises(WmarkError, match="bad --fail-under"):
        bench_report.parse_threshold(text)


def test_threshold_splits_on_the_last_equals():
    assert bench_report.parse_threshold("jpeg:quality=50=0.95") == bench_report.Threshold("jpeg:quality=50", 0.95)


def test_cli_fail_under_exits_1_and_writes_junit(photo, tmp_path):
    out = tmp_path / "bench"
    got = runner.invoke(app, ["bench", str(photo), "-a", "identity", "-a", "rotate:degrees=30", "--out", str(out),
                              "--fail-under", "identity=0.99", "--fail-under", "rotate:degrees=30=0.99"])
    assert got.exit_code == 1, got.output
    assert "FAIL rotate:degrees=30=0.99" in got.stdout and zoo.default_name() in got.stdout
    suite = ElementTree.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c.find("failure") is not None for c in suite.iter("testcase")}
    assert cases == {"identity=0.99": False, "rotate:degrees=30=0.99": True}
    assert suite.get("failures") == "1"
    assert {"frames.csv", "summary.json", "curves.png", "junit.xml"} <= {p.name for p in out.iterdir()}


def test_cli_passing_thresholds_exit_0_with_json(photo, tmp_path):
    got = runner.invoke(app, ["bench", str(photo), "-a", "identity", "--out", str(tmp_path), "--json",
                              "--fail-under", "identity=0.99"])
    assert got.exit_code == 0, got.output
    summary = json.loads(got.stdout)
    assert summary["thresholds"][0]["passed"] and summary["results"][0]["bit_accuracy"] == 1.0


@pytest.mark.parametrize("threshold, match", [("jpeg:quality=50=2", "bad --fail-under"),
                                              ("blur:sigma=3=0.9", "does not apply")])
def test_cli_bad_threshold_exits_2(photo, tmp_path, threshold, match):
    got = runner.invoke(app, ["bench", str(photo), "--out", str(tmp_path), "--fail-under", threshold])
    assert got.exit_code == 2
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0]
    assert not (tmp_path / "summary.json").exists()


def test_cli_bad_attack_and_model_exit_2(photo, tmp_path):
    for args in (["-a", "nosuch"], ["-m", "nosuch-model"], ["-m", "imwatermark:nosuch"]):
        got = runner.invoke(app, ["bench", str(photo), "--out", str(tmp_path), *args])
        assert got.exit_code == 2 and got.stderr.startswith("error:"), got.output


def test_peer_round_trip_through_the_bench(photo):
    pytest.importorskip("imwatermark")
    from wmark.bench import peers

    peer = peers.Peer("imwatermark:dwtDctSvd")
    rows = bench.run([photo], [peer], ["identity", "resize:scale=0.5"], device="cpu")
    clean = next(r for r in rows.rows if r["attack"] == "identity")
    assert clean["bit_accuracy"] == 1.0 and clean["strength"] is None and 30 < clean["psnr"] < 50
    assert rows.errors[0]["attack"] == "resize:scale=0.5" and "65536" in rows.errors[0]["error"]
    codeword = torch.zeros(peer.bits, dtype=torch.long)
    with pytest.raises(WmarkError, match="at least"):
        peer.embed_tensor(torch.rand(1, 3, 100, 100), codeword)


def test_flip_is_measured_when_asked(photo, tmp_path):
    result = bench.run([photo], bench.load_models(["mbrs-64"], "cpu"), ["identity"], flip=True, device="cpu")
    row = result.rows[0]
    assert 0 < row["flip"] < 1 and row["flip_ratio"] > 0
    summary = bench.summarize(result)
    assert summary["results"][0]["flip_ratio"] == pytest.approx(row["flip_ratio"], rel=1e-5)
    bench_report.write_outputs(result, summary, tmp_path)
    assert (tmp_path / "curves_flip.png").stat().st_size > 0
    plain = bench.summarize(bench.run([photo], bench.load_models(["mbrs-64"], "cpu"), ["identity"], device="cpu"))
    assert plain["results"][0]["flip"] is None


def test_search_reads_a_flip_that_the_raw_read_misses(photo):
    """--search fast reads the hflip-attacked image as `wmark extract --search fast` does; off reads it as received."""
    model = bench.load_models(["mbrs-64"], "cpu")
    off, fast = (bench.run([photo], model, ["hflip"], device="cpu", search=level).rows[0] for level in ("off", "fast"))
    assert off["search"] == "off" and not off["word_ok"] and off["bit_accuracy"] < 0.8 and off["p_value"] > 1e-3
    assert fast["search"] == "fast" and fast["word_ok"] and fast["bit_accuracy"] == 1.0
    assert fast["p_value"] == pytest.approx(16 * 2.0**-64)  # all 64 bits, times extract's factor: 2 x 8 poses
    assert fast["psnr"] == off["psnr"]  # the very same marked image, read two ways


def test_cli_shows_the_search_level_in_table_csv_and_summary(photo, tmp_path):
    from wmark.bench import peers

    peer = [n for n in peers.available() if n.endswith("dwtDctSvd")]
    args = ["-m", "mbrs-64", *(a for name in peer for a in ("-m", name))]
    got = runner.invoke(app, ["bench", str(photo), *args, "-a", "hflip", "--search", "fast", "--out", str(tmp_path)])
    assert got.exit_code == 0, got.output
    lines = got.stdout.splitlines()
    assert any("search" in line and "bit accuracy" in line for line in lines)
    assert any("mbrs-64" in line and " fast " in line and "1.0000" in line for line in lines)
    with open(tmp_path / "frames.csv") as f:
        rows = list(csv.DictReader(f))
    assert {(r["model"], r["search"]) for r in rows} == {("mbrs-64", "fast"), *((name, "off") for name in peer)}
    assert rows[0]["bit_accuracy"] == "1.0" and "bit_acc" not in rows[0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["search"] == "fast"
    assert {(g["model"], g["search"]) for g in summary["results"]} == {(r["model"], r["search"]) for r in rows}
    if peer:  # a peer has no search: read as received, and its line says so
        assert any(peer[0] in line and " off " in line for line in lines)


def test_cli_search_refuses_videos_and_unknown_levels(photo, tmp_path):
    cases = ((["--search", "fast", str(CLIP)], "reads images only"), (["--search", "nosuch"], "unknown search"))
    for args, match in cases:
        got = runner.invoke(app, ["bench", str(photo), "-m", "mbrs-64", "-a", "identity", "--out", str(tmp_path),
                                  *args])
        assert got.exit_code == 2, got.output
        lines = got.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0]
    assert not (tmp_path / "summary.json").exists()


def test_video_frames_are_marked_in_their_planes_as_embed_marks_them(monkeypatch):
    """A video's frames go through the product's path (Embedder.frame_residual added to the decoded planes), not
    embed_tensor on RGB."""
    model = bench.load_models(["mbrs-64"], "cpu")[0]
    calls, residual = [], model.embedder.frame_residual

    def spy(frames, codeword):
        calls.append(len(frames))
        return residual(frames, codeword)

    def refuse(*args, **kwargs):
        raise AssertionError("embed_tensor marked a video frame")

    monkeypatch.setattr(model.embedder, "frame_residual", spy)
    monkeypatch.setattr(model, "embed_tensor", refuse)
    rows = bench.run([CLIP], [model], ["identity"], frames=3, device="cpu").rows
    assert calls == [3] and [r["frame"] for r in rows] == [0, 10, 19]
    assert all(r["bit_accuracy"] == 1.0 and 30 < r["psnr"] < 50 for r in rows)
