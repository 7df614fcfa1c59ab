"""benchmarks/gpu_session.py --dry-run: every step of the GPU session on the CPU, the files it returns,
and the device command that benchmarks/gpu_wheels.sh and the session's docstring give."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wmark
from conftest import benchmark_script

ROOT = Path(__file__).resolve().parents[1]
SESSION, WHEELS = ROOT / "benchmarks" / "gpu_session.py", ROOT / "benchmarks" / "gpu_wheels.sh"
STEPS = ("environment", "tests", "speed", "training")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out")
    env = {**os.environ, "OUT": str(out)}  # the device tool's $OUT, honoured without --out
    done = subprocess.run([sys.executable, str(SESSION), "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads((out / "gpu_session.json").read_text())


def test_every_step_runs_without_errors(dry_run):
    _, summary = dry_run
    assert set(summary) == {"session", *STEPS, "errors"}
    assert summary["errors"] == {}
    assert summary["session"]["mode"] == "dry-run" and summary["session"]["wall_s"] < 180
    for step in STEPS:
        assert summary[step]["status"] == "ok" and summary[step]["seconds"] >= 0
    assert summary["environment"]["cpu_count"] >= 1 and summary["environment"]["torch"]
    assert summary["tests"]["returncode"] == 0 and "skipped" in summary["tests"]["summary"]  # no CUDA here


def test_speed_rows_cover_both_sides_models_and_batches(dry_run):
    speed = dry_run[1]["speed"]
    rows = speed["images"]
    assert {(r["side"], r["model"], r["batch"]) for r in rows} == {
        (side, model, batch) for side in ("device", "cpu") for model in speed["models"] for batch in speed["batches"]}
    assert all(r["embed_fps"] > 0 and r["extract_fps"] > 0 for r in rows)
    assert [b["side"] for b in speed["bench"]] == ["device", "cpu"]
    assert all(b["frames"] > 0 and b["frames_per_s"] > 0 for b in speed["bench"])
    assert len(speed["ratios"]) == len(speed["models"]) * len(speed["batches"])


def test_training_exports_a_loadable_checkpoint(dry_run):
    out, summary = dry_run
    training = summary["training"]
    assert training["steps_done"] == training["steps_planned"] > 0
    assert training["family"] == "hidden" and training["init"] is None  # issue 21: HiDDeN, from fresh weights
    folder = out / training["name"]
    marker = wmark.load(str(folder), device="cpu")
    assert marker.card.data["size"] == training["kwargs"]["size"] and marker.card.family == "hidden"
    assert marker.card.data["strength_rule"] == f"median PSNR {training['target_psnr']} dB on the validation images"
    assert (folder / "log.csv").is_file()


def test_a_run_of_the_default_family_starts_from_the_default_weights_where_shapes_match():
    init_from = benchmark_script("gpu_session").init_from
    card = wmark.zoo.find_card(wmark.zoo.default_name())
    model = wmark.zoo.build(card.family, **{**card.kwargs, "size": 2 * card.kwargs["size"]})
    found = init_from(model, card)
    assert found["from"] == card.name and 0 < found["tensors"] < found["of"]


def test_a_run_through_a_domain_goes_on_from_that_card(tmp_path, one_torch_thread):
    """--domain: issue 40's training through a card's embedding domain, here toy-sized on the CPU."""
    script = benchmark_script("gpu_session")
    train, val = script.toy_data(tmp_path / "data")
    args = argparse.Namespace(family="mbrs", size=64, domain="mbrs-64-tiled", frame=512, target_flip=0.55,
                              target_psnr=37.0, pipeline_size=256, codec_workers=0, attack=None, data=train, val=val)
    (tmp_path / "out").mkdir()
    result = script.training(args, "cpu", True, script.Session(tmp_path / "out", "dry-run", 300.0))
    assert result["init"]["from"] == "mbrs-64-tiled" and result["init"]["tensors"] == result["init"]["of"] > 0
    assert result["frame"] == 128
    assert result["pipeline_size"] is None and result["steps_done"] == result["steps_planned"] > 0
    card = wmark.load(str(tmp_path / "out" / result["name"]), device="cpu").card
    assert card.data["domain"] == wmark.zoo.find_card("mbrs-64-tiled").data["domain"]
    assert card.data["training"]["target_flip"] == 0.55 and card.data["training"]["init"] == "mbrs-64-tiled"


def test_files_fit_what_the_device_returns(dry_run):
    out, summary = dry_run
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == summary["session"]["files"]
    assert len(files) <= 7  # the 8th is the run command's session.log
    assert all(f.count("/") <= 1 and re.fullmatch(r"[A-Za-z0-9._/-]+", f) for f in files)
    assert {"gpu_session.json", "pytest.log", "train.log"} <= set(files)


def test_device_command_is_the_same_in_both_scripts_and_fits():
    command = [line for line in SESSION.read_text().splitlines() if line.startswith("set -o pipefail;")]
    assert len(command) == 1 and len(command[0]) < 2000
    assert f"# {command[0]}" in WHEELS.read_text().splitlines()
    assert "--target /tmp/site .whl/*.whl" in command[0] and "$OUT" in command[0]
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/.whl/" in ignored and "/.gpu_data/" in ignored  # what carry names must be ignored
