"""Checkpoint folders: lookup, sha256 check, strict loading, and no unpickling."""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import pytest

import wmark
from tests.conftest import benchmark_script
from wmark import zoo
from wmark.payload import PayloadCode


def test_load_by_folder_path(untrained_checkpoint):
    marker = wmark.load(untrained_checkpoint, device="cpu")
    assert marker.bits == 32 and marker.name == "tiny"


def test_load_by_name_from_env(untrained_checkpoint, monkeypatch):
    monkeypatch.setenv("WMARK_CHECKPOINTS", str(untrained_checkpoint.parent))
    assert wmark.load("tiny", device="cpu").name == "tiny"


def test_unknown_model_lists_known():
    with pytest.raises(wmark.WmarkError, match="unknown model 'nope'"):
        wmark.load("nope")


def test_corrupt_weights_fail_sha256(untrained_checkpoint, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(untrained_checkpoint, folder)
    weights = folder / zoo.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(wmark.WmarkError, match="sha256"):
        wmark.load(folder)


def test_the_card_payload_block_builds_the_code(untrained_checkpoint, tmp_path):
    """The card's payload layout, not the bit count alone, gives the Reed-Solomon code; a block that disagrees
    with itself, or none at all, is refused."""
    folder = tmp_path / "layout"
    shutil.copytree(untrained_checkpoint, folder)
    card = json.loads((folder / zoo.CARD).read_text())
    layout = PayloadCode(32, symbol_bits=4, parity_symbols=2, crc_bits=8).describe()
    (folder / zoo.CARD).write_text(json.dumps({**card, "payload": layout}))
    marker = wmark.load(folder)
    assert marker.code().describe() == layout and marker.code().parity_symbols != PayloadCode(32).parity_symbols
    assert marker.code("k").describe() == layout
    (folder / zoo.CARD).write_text(json.dumps({**card, "payload": {**layout, "data_bits": 99}}))
    with pytest.raises(wmark.WmarkError, match="disagrees"):
        wmark.load(folder)
    (folder / zoo.CARD).write_text(json.dumps({k: v for k, v in card.items() if k != "payload"}))
    with pytest.raises(wmark.WmarkError, match="lacks payload"):
        wmark.load(folder)


def test_weights_that_do_not_fit_are_refused(untrained_checkpoint, tmp_path):
    folder = tmp_path / "mismatch"
    shutil.copytree(untrained_checkpoint, folder)
    card = json.loads((folder / zoo.CARD).read_text())
    card["kwargs"]["channels"] = 16
    (folder / zoo.CARD).write_text(json.dumps(card))
    with pytest.raises(wmark.WmarkError, match="do not fit"):
        wmark.load(folder)


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"family": "hidden"})])
def test_bad_card(untrained_checkpoint, tmp_path, content):
    folder = tmp_path / "card"
    shutil.copytree(untrained_checkpoint, folder)
    (folder / zoo.CARD).write_text(content)
    with pytest.raises(wmark.WmarkError, match="card"):
        wmark.load(folder)


def test_pickled_weights_are_never_loaded(untrained_checkpoint, tmp_path):
    """A pickle in place of the safetensors file is refused before anything is unpickled."""
    folder = tmp_path / "pickle"
    shutil.copytree(untrained_checkpoint, folder)
    payload = pickle.dumps({"boom": 1})
    (folder / zoo.WEIGHTS).write_bytes(payload)
    card = json.loads((folder / zoo.CARD).read_text())
    card["sha256"] = hashlib.sha256(payload).hexdigest()
    (folder / zoo.CARD).write_text(json.dumps(card))
    with pytest.raises(wmark.WmarkError):
        wmark.load(folder)


def test_checkpoints_found_from_installed_package():
    roots = zoo.checkpoint_roots()
    assert any((root / "zoo.json").is_file() for root in roots)


@pytest.mark.parametrize("content", [None, "", "{}", "[1]"])
def test_unreadable_default_index(tmp_path, content):
    index = tmp_path / "zoo.json"
    if content is not None:
        index.write_text(content)
    with pytest.raises(wmark.WmarkError, match="default model"):
        zoo.default_name(index)


def test_a_bad_card_is_skipped_not_fatal(untrained_checkpoint, tmp_path, monkeypatch):
    shutil.copytree(untrained_checkpoint, tmp_path / "good")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / zoo.CARD).write_text("{oops")
    monkeypatch.setenv("WMARK_CHECKPOINTS", str(tmp_path))
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        names = [card.name for card in zoo.list_cards()]
    assert "good" in names and "broken" not in names


def test_default_rule_gates_on_visibility_before_robustness():
    """A robust but visible checkpoint loses to a less robust invisible one."""
    script = benchmark_script("default_model")

    class FakeCard:
        def __init__(self, name):
            self.name, self.strength, self.data = name, 1.0, {"bits": 192, "capacity_bytes": 13}

    cards = [FakeCard("visible"), FakeCard("invisible")]
    rows = [{"model": name, "strength": 1.0, "attack": "identity", "word_ok": ok, "bit_accuracy": ok}
            for name, ok in (("visible", 1.0), ("invisible", 0.8))]
    report = {"photos": {"results": rows}, "video": {"results": rows}}
    visibility = {"visible": {"median_flip_ratio": 1.9, "median_psnr": 40.1},
                  "invisible": {"median_flip_ratio": 0.5, "median_psnr": 48.0}}
    small = {name: {"160": {"jpeg75": 0.6}, "320": {"jpeg75": 0.95}} for name in ("visible", "invisible")}
    rows.append({"model": "visible", "strength": 1.0, "attack": "h264:crf=28", "word_ok": 1.0, "bit_accuracy": 1.0})
    small["visible"]["160"] = {"jpeg75": 0.97, "h264_crf23": 0.96}
    choice = script.choose(report, cards, visibility, small)
    assert choice["default"] == "invisible" and "FLIP 1.9" in choice["excluded"]["visible"]
    assert choice["video_default"] == "visible"  # the only one that reads H.264 CRF 28
    cards[0].data["capacity_bytes"] = 3
    with pytest.raises(SystemExit, match="visible': 'holds 3 bytes, under 9"):
        script.choose(report, cards, visibility, small)
    cards[0].data["capacity_bytes"] = 13
    rows.pop()  # without frames that read CRF 28, a clip message measured on the pans qualifies
    with pytest.raises(SystemExit, match="no checkpoint qualifies for video"):
        script.choose(report, cards, visibility, small)
    assert script.choose(report, cards, visibility, small, {"invisible": True})["video_default"] == "invisible"
    small["invisible"]["320"]["jpeg75"] = 0.85
    with pytest.raises(SystemExit, match="no checkpoint qualifies"):
        script.choose(report, cards, visibility, small)


def test_committed_default_is_the_benchmarks_choice():
    """zoo.json names the checkpoint benchmarks/default_model.py picks from the committed results."""
    script = benchmark_script("default_model")
    choice = script.choose(*script.load_inputs())
    assert choice["default"] == zoo.default_name()
    assert choice["video_default"] == zoo.default_name(medium="video")


def test_video_gain_rule_keeps_a_step_of_headroom():
    """benchmarks/video_domain.py picks the smallest gain that reads every pan's message, as the smaller one did."""
    script = benchmark_script("video_domain")
    rows = lambda reads: [{"gain": g, "message": ok} for g, oks in reads.items() for ok in oks]  # noqa: E731
    gains = [1.0, 1.5, 2.0, 2.5]
    assert script.choose(rows({1.0: [True, False], 1.5: [True, True], 2.0: [True, True]}), gains[:3]) == 2.0
    assert script.choose(rows({1.0: [True, True], 1.5: [True, True]}), gains[:2]) == 1.5
    assert script.choose(rows({1.0: [False], 1.5: [False], 2.0: [False], 2.5: [True]}), gains) is None


def test_training_curves_join_segments_on_one_step_axis(tmp_path):
    """benchmarks/training_curves.py: a segment continued with --init counts from 0 again; it is shifted on."""
    script = benchmark_script("training_curves")
    header = "step,bit_acc,psnr,val_bit_acc[identity]\n"
    (tmp_path / "log-segment1.csv").write_text(header + "500,0.6,9.0,\n1000,0.7,9.1,0.65\n")
    (tmp_path / "log-segment2.csv").write_text(header + "500,0.75,9.2,0.74\n")
    (tmp_path / "log.csv").write_text(header + "500,0.8,9.3,\n1000,0.85,9.4,0.83\n")
    rows = script.read_run(tmp_path)
    assert [(r["step"], r["segment"]) for r in rows] == [(500, 1), (1000, 1), (1500, 2), (2000, 3), (2500, 3)]
    assert script.smoothed(rows, "bit_acc") == ([500, 1000, 1500, 2000, 2500], [0.6, 0.7, 0.75, 0.8, 0.85])
