"""Search over flips and quarter turns at extraction, with the p-value corrected for the hypotheses tried."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import wmark
from cli import app
from tests.conftest import benchmark_script
from wmark.sync import DEFAULT_SEARCH, rotation
from wmark.sync.dihedral import DO, UNDO
from wmark.sync.search import LEVELS, Pose
from wmark.watermarker.decision import factor
from wmark.watermarker.reports import Extraction
from wmark.watermarker.search import first_detected, in_turn, plan


@pytest.fixture(scope="module")
def marker():
    return wmark.load("mbrs-64-tiled", device="cpu")


def test_each_transform_is_undone_exactly():
    x = torch.rand(2, 3, 5, 7)
    assert set(LEVELS["fast"].transforms) == set(UNDO) == set(DO) and LEVELS["off"].transforms == ("identity",)
    for name in UNDO:
        assert torch.equal(UNDO[name](DO[name](x)), x), name


@pytest.fixture(scope="module")
def marked(marker, photo) -> torch.Tensor:
    return torch.from_numpy(np.asarray(marker.embed(Image.open(photo), "hi")).copy()).permute(2, 0, 1)


@pytest.mark.parametrize("name", ["flip-h", "rot90", "anti-transpose"])
def test_search_recovers_the_transform(marker, marked, name):
    edited = DO[name](marked).permute(1, 2, 0).numpy().copy()
    found = marker.extract(edited, search="fast")
    # two looks a pose (the coarser bands, then all): twice the level's factor of 8 transforms x 2
    assert found.detected and found.message == "hi" and found.transform == name and found.hypotheses == 32
    if name == "flip-h":
        assert not marker.extract(edited, search="off").detected
        assert marker.detect(edited, expect="hi", search="fast").transform == name


def _random_reads(marker, seed: int):
    """One look that returns coin-toss decoder logits whatever the pose: every detection is a false one."""
    generator = torch.Generator().manual_seed(seed)
    return [lambda pose: torch.randn(marker.bits, generator=generator)]


def _expect_hi(marker, fpr: float):
    return lambda logits, count: marker.decision.detect(logits, expect="hi", fpr=fpr, hypotheses=count)


def test_search_p_value_keeps_the_false_positive_rate(marker):
    """Random decoder outputs, 8 hypotheses each: uncorrected, some hypothesis passes the binomial test at
    fpr 0.1 about 1 - 0.9^8 = 57 % of the time; the search's Bonferroni factors (2 for the image as received,
    16 for the others) keep it under 10 %."""
    level, trials, fpr = LEVELS["fast"], 200, 0.1
    candidates = [(Pose(name), factor(level, Pose(name))) for name in level.transforms]
    assert [count for _, count in candidates] == [2] + [16] * 7
    read, decide = _random_reads(marker, 0), _expect_hi(marker, fpr)
    searched = sum(first_detected(candidates, read, decide).detected for _ in range(trials))
    uncorrected = [(pose, 1) for pose, _ in candidates]
    any_of_eight = sum(first_detected(uncorrected, read, decide).detected for _ in range(trials))
    assert searched <= fpr * trials + 3 * (fpr * trials) ** 0.5  # within 3 sigma of the bound
    assert any_of_eight / trials > 0.2


@pytest.mark.parametrize("name", ["fast", "tilt", "full"])
def test_every_level_keeps_the_false_positive_rate_however_many_poses_it_reads(marker, name):
    """A search may read many poses, up to every one its level could end on: with the factors of
    :func:`wmark.watermarker.decision.factor`, random decoder outputs are detected at most ``fpr`` of the time."""
    level, trials, fpr = LEVELS[name], 300, 0.2
    generator = torch.Generator().manual_seed(7)
    angles = (torch.rand(60, generator=generator) * 20 - 10).tolist() if level.rotations else [0.0]
    poses = [Pose(transform, round(angle, 3)) for transform in level.transforms for angle in angles]
    candidates = [(pose, factor(level, pose)) for pose in [Pose()] + [p for p in poses if p != Pose()]]
    found = [first_detected(candidates, _random_reads(marker, trial), _expect_hi(marker, fpr))
             for trial in range(trials)]
    assert sum(f.detected for f in found) <= fpr * trials + 3 * (fpr * trials) ** 0.5


@pytest.mark.parametrize("by_look", [False, True])
def test_two_looks_a_pose_keep_the_false_positive_rate(marker, by_look):
    """Each look at a pose (the coarser bands alone, then every band: Reader.image_reads) is one more test; with the
    factor doubled, random outputs under both looks of every pose of ``fast``, in either order, are detected at most
    ``fpr``."""
    level, trials, fpr = LEVELS["fast"], 300, 0.2
    assert len(marker.reader.image_reads(torch.rand(1, 3, 64, 64))) == 2
    assert len(wmark.load("mbrs-64", device="cpu").reader.image_reads(torch.rand(1, 3, 64, 64))) == 1
    candidates = [(Pose(name), factor(level, Pose(name))) for name in level.transforms]
    found = [first_detected(candidates, _random_reads(marker, trial) + _random_reads(marker, trials + trial),
                            _expect_hi(marker, fpr), by_look) for trial in range(trials)]
    assert {f.hypotheses for f in found} == {4, 32}
    assert sum(f.detected for f in found) <= fpr * trials + 3 * (fpr * trials) ** 0.5


def test_a_search_by_look_takes_the_first_look_at_every_pose_before_the_next():
    """Pose by pose, each look at a pose comes before the next pose; by look, the cheap look goes over every pose
    first. Either way every look at every pose is read when nothing detects, and the image as received's last look
    is what is reported."""
    candidates = [(Pose(name), 1) for name in ("identity", "flip-h", "rot90")]
    looks = ["quick", "whole"]
    for by_look, expected in ((False, [(0, "quick"), (0, "whole"), (1, "quick"), (1, "whole"), (2, "quick"),
                                       (2, "whole")]),
                              (True, [(0, "quick"), (1, "quick"), (2, "quick"), (0, "whole"), (1, "whole"),
                                      (2, "whole")])):
        planned = []

        def lazily():  # as image_candidates plans the other poses only once asked for them
            for candidate in candidates:
                planned.append(candidate)
                yield candidate

        order = []
        for index, _, look in in_turn(lazily(), looks, by_look):
            order.append((index, look))
            assert len(order) > 1 or len(planned) == 1  # the image as received's first look before any planning
        assert order == expected
        read = []
        reads = [lambda pose, look=look: torch.tensor([len(read.append((pose, look)) or read)]) for look in looks]
        decide = lambda logits, count: Extraction(detected=False, message=None, hex=None, codeword="", p_value=1.0,
                                                  bit_confidence=float(logits[0]), corrected_symbols=0)
        report = first_detected(iter(candidates), reads, decide, by_look)
        assert len(read) == 6 and report.transform == "identity"
        assert report.bit_confidence == read.index((Pose(), "whole")) + 1  # the as received's last look, reported


def test_a_level_that_does_not_search_takes_one_whole_look(marker, marked):
    """``--search off`` decodes every band once and counts one test, as its docs say."""
    assert len(marker.reader.image_reads(torch.rand(1, 3, 64, 64), searches=False)) == 1
    found = marker.extract(marked.permute(1, 2, 0).numpy().copy(), search="off")
    assert found.detected and found.message == "hi" and found.hypotheses == 1


def test_a_small_photo_is_searched_by_look_and_a_large_one_pose_by_pose(marker):
    """The cheap look reads the coarse and size-aware bands at 768x512, the coarse band alone at 2048x1280."""
    assert marker.reader.by_look(torch.rand(1, 3, 512, 768))
    assert not marker.reader.by_look(torch.rand(1, 3, 1280, 2048))
    assert not wmark.load("mbrs-64", device="cpu").reader.by_look(torch.rand(1, 3, 512, 768))


def test_rotation_search_p_value_counts_every_angle(marker):
    """With rotations a search reads only its best-aligned poses, but it could have ended on any of 2 x 175 (tilt):
    random decoder outputs read as received and under 2 poses each are detected well under ``fpr`` of the time."""
    level, trials, fpr = LEVELS["tilt"], 200, 0.1
    candidates = [(pose, factor(level, pose)) for pose in (Pose(), Pose("identity", 1.5), Pose("flip-h", -3.0))]
    read, decide = _random_reads(marker, 1), _expect_hi(marker, fpr)
    found = [first_detected(candidates, read, decide) for _ in range(trials)]
    assert level.hypotheses == 2 * rotation.ANGLES == 350 and {f.hypotheses for f in found} <= {2, 700}
    assert factor(level, candidates[1][0]) == 700 and factor(LEVELS["off"], Pose()) == 1
    # half the budget goes to the image as received, and the rotated poses share the other half
    assert sum(f.detected for f in found) <= fpr * trials / 2 + 3 * (fpr * trials / 2) ** 0.5
    assert sum(f.detected and f.hypotheses == 700 for f in found) <= fpr * trials / 10


def test_scan_and_refine_find_the_best_angle_to_an_eighth_of_a_degree():
    calls = []

    def scores(angles):
        calls.extend(angles)
        return [-abs(angle + 6.3) for angle in angles]
    angle, best = rotation.scan(scores)
    assert angle == -6.0 and best == pytest.approx(-0.3)
    assert rotation.refine(angle, scores) == -6.25
    limit = rotation.LIMIT + rotation.SPAN + rotation.FINE[1]
    assert all(abs(a) <= limit and (a / rotation.FINE[1]).is_integer() for a in calls)
    assert rotation.ANGLES == 2 * limit / rotation.FINE[1] + 1


def test_tilt_search_recovers_a_rotation(marker, marked):
    photo = Image.fromarray(marked.permute(1, 2, 0).numpy())
    for degrees in (4.0, -2.5):
        turned = photo.rotate(degrees, resample=Image.BICUBIC)
        assert not marker.extract(turned, search="off").detected
        found = marker.extract(turned, search="tilt")
        assert found.detected and found.message == "hi" and found.transform == "identity"
        assert abs(found.rotation - degrees) <= 0.25 and found.hypotheses == 2 * 700  # two looks a pose


def test_cli_search_reports_the_transform(photo, tmp_path):
    runner = CliRunner()
    marked = tmp_path / "m.png"
    assert runner.invoke(app, ["embed", str(photo), str(marked), "--message", "hi"]).exit_code == 0
    Image.open(marked).transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "flipped.png")
    found = json.loads(runner.invoke(app, ["extract", str(tmp_path / "flipped.png"), "--search", "fast", "--json"]).stdout)
    assert found["detected"] and found["transform"] == "flip-h" and found["hypotheses"] == 32
    bad = runner.invoke(app, ["extract", str(marked), "--search", "everything"])
    assert bad.exit_code == 2 and "unknown search" in bad.stderr


def test_scan_search_finds_a_flipped_mark(photo, tmp_path):
    runner = CliRunner()
    marked = tmp_path / "m.png"
    assert runner.invoke(app, ["embed", str(photo), str(marked), "--message", "hi"]).exit_code == 0
    Image.open(marked).transpose(Image.FLIP_TOP_BOTTOM).save(marked)
    plain = json.loads(runner.invoke(app, ["scan", str(marked), "-m", "mbrs-64-tiled", "--workers", "0",
                                           "--search", "off"]).stdout)
    found = json.loads(runner.invoke(app, ["scan", str(marked), "-m", "mbrs-64-tiled", "--workers", "0",
                                           "--search", "fast"]).stdout)
    assert not plain["detected"] and found["detected"] and found["transform"] == "flip-v" and found["message"] == "hi"


def test_a_mirrored_video_is_read_with_the_search(clip, tmp_path):
    """The transform is found on a few frames and undone on all of them; audio and timing are irrelevant here."""
    from dataclasses import replace

    from tests.conftest import TINY_CLIP_MODEL
    from wmark.io.video import transcode

    video = wmark.load(TINY_CLIP_MODEL, device="cpu")
    marked, mirrored = tmp_path / "marked.mp4", tmp_path / "mirrored.mp4"
    video.embed_file(clip, marked, "hi")
    transcode(marked, mirrored, lambda f: replace(f, y=f.y.flip(-1), u=f.u.flip(-1), v=f.v.flip(-1)), crf=18)
    assert not video.extract(mirrored, search="off").detected
    found = video.extract(mirrored, search="fast")
    assert found.detected and found.message == "hi" and found.transform == "flip-h" and found.hypotheses == 16
    tilted = video.extract(mirrored)  # the default search scans the frames' mean and its mirror image for a turn
    assert tilted.detected and tilted.message == "hi" and tilted.transform == "flip-h"
    # a video counts its level's bound, without the crop placements a model with no template never scores
    assert tilted.hypotheses == 2 * len(LEVELS[DEFAULT_SEARCH].transforms) * rotation.ANGLES
    assert video.detect(mirrored, search="fast").transform == "flip-h"


def test_scan_search_finds_a_mirrored_video(clip, tmp_path):
    from dataclasses import replace

    from tests.conftest import TINY_CLIP_MODEL
    from wmark.io.video import transcode

    marked, mirrored = tmp_path / "marked.mp4", tmp_path / "mirrored.mp4"
    wmark.load(TINY_CLIP_MODEL, device="cpu").embed_file(clip, marked, "hi")
    transcode(marked, mirrored, lambda f: replace(f, y=f.y.flip(-2), u=f.u.flip(-2), v=f.v.flip(-2)), crf=18)
    row = json.loads(CliRunner().invoke(app, ["scan", str(mirrored), "-m", TINY_CLIP_MODEL, "--workers", "0",
                                              "--search", "fast"]).stdout)
    assert row["detected"] and row["transform"] == "flip-v" and row["message"] == "hi" and row["frames"] == 20


def test_default_level_rule_reads_the_most_edits_within_the_time_budget():
    script = benchmark_script("search")
    seconds = {"dwtDctSvd decode": 1.0, **{f"{s} {w}": t for s, t in
                                          (("off", 0.6), ("fast", 6.0), ("tilt", 4.0), ("full", 9.0))
                                          for w in ("marked", "unmarked")}}
    passing = {"off": ["none"], "fast": ["none", "flip"], "tilt": ["none", "flip", "rotate2"],
               "full": ["none", "flip", "rotate2", "rotate90"]}
    summary = {f"{s}/{edit}": {"passes": True} for s, edits in passing.items() for edit in edits}
    choice = script.choose(summary, seconds)
    assert choice["default"] == "tilt" and not choice["levels"]["full"]["within_budget"]
    seconds["tilt unmarked"] = 5.5  # over 5 decodes of dwtDctSvd: only "off" is left
    assert script.choose(summary, seconds)["default"] == "off"


def test_default_level_rule_breaks_a_tie_by_exact_reads_then_cost():
    script = benchmark_script("search")
    seconds = {"dwtDctSvd decode": 1.0, "tilt marked": 0.7, "tilt unmarked": 3.0, "sync marked": 0.7,
               "sync unmarked": 3.5}
    summary = {f"{s}/{edit}": {"passes": edit != "crop50", "exact": exact}
               for s, crops in (("tilt", 0.0), ("sync", 0.8)) for edit, exact in (("flip", 0.9), ("crop50", crops))}
    assert script.choose(summary, seconds)["default"] == "sync"  # same edits passed, more photos read
    summary["sync/crop50"]["exact"] = 0.0
    assert script.choose(summary, seconds)["default"] == "tilt"  # the same reads: the cheaper


def test_default_search_is_the_committed_measurement_choice():
    script = benchmark_script("search")
    committed = json.loads((script.RESULTS / "search.json").read_text())
    assert DEFAULT_SEARCH == script.choose(committed["summary"], committed["speed_1080p_seconds"])["default"]
    assert script.choose(committed["summary"], committed["speed_1080p_seconds"]) == committed["choice"]


def test_a_model_without_a_template_counts_no_placement_under_sync():
    """``sync`` tries no crop placement for a model without a template, so its p-value counts ``tilt``'s poses,
    as a video's does (:func:`wmark.watermarker.decision.video_factor`)."""
    plain = wmark.load("mbrs-64", device="cpu")
    count, _ = plan(plain.reader, torch.zeros(1, 3, 64, 64), LEVELS["sync"])
    assert count == LEVELS["tilt"].hypotheses == plain.video_factor(LEVELS["sync"], Pose("flip-h")) // 2
