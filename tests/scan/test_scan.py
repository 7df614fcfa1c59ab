"""wmark scan: rows for marked, clean and bad files, several models, resume after SIGKILL, engines."""
from __future__ import annotations

import csv
import functools
import json
import operator
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import wmark
from cli import app
from tests.conftest import TINY_CLIP_MODEL
from wmark.io.image import from_uint8, to_uint8
from wmark.scan.pool import ProcessPool

FIXTURES = Path(__file__).parents[1] / "fixtures"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small images gain nothing from threads, and spinning threads crawl on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scan(*args, **kwargs):
    return runner.invoke(app, ["scan", *map(str, args)], **kwargs)


def read_report(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_path = {row["path"]: row for row in rows}
    assert len(by_path) == len(rows), "a file was reported twice"
    return by_path


def _png_bomb(path: Path, side: int = 30000, rows: int = 100) -> None:
    """A real side x side grey PNG of one colour, a few hundred KB on disk (identical deflate blocks)."""
    block = b"\0" * (side + 1) * rows
    deflate = zlib.compressobj(9)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeat = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side // rows):
        checksum = zlib.adler32(block, checksum)
    data = first + repeat * (side // rows - 1) + deflate.flush()[:-4] + struct.pack(">I", checksum)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _video(path: Path, frames, crf: int = 12) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"preset": "ultrafast", "crf": str(crf)}
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _half_marked_clip(marker, path: Path) -> None:
    """Ten frames of the fixture clip; frames 5-9 carry the message "hi"."""
    with av.open(str(FIXTURES / "clip.mp4")) as clip:
        frames = [f.to_ndarray(format="rgb24") for f in clip.decode(video=0)][:10]
    x = from_uint8(np.stack(frames[5:]))
    marked = to_uint8(marker.embed_tensor(x, marker.codeword("hi")))
    _video(path, frames[:5] + list(marked))


def _snapshot(root: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK)}


@pytest.fixture(scope="module")
def collection(tmp_path_factory, photo) -> Path:
    """Marked and clean images and videos, and every kind of bad input, in one folder."""
    root = tmp_path_factory.mktemp("collection")
    marker = wmark.load(TINY_CLIP_MODEL)
    marker.embed_file(photo, root / "marked.png", message="hi")
    shutil.copy(photo, root / "clean.jpg")
    (root / "video").mkdir()
    _half_marked_clip(marker, root / "video" / "half.mp4")
    shutil.copy(FIXTURES / "clip.mp4", root / "video" / "clean.mp4")
    bad = root / "bad"
    bad.mkdir()
    _png_bomb(bad / "bomb.png")
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(photo.read_bytes()[:5000])
    (bad / "text.jpg").write_text("not a picture\n" * 20)
    _audio_only(bad / "audio.mp4")
    shutil.copy(photo, bad / "unreadable.jpg")
    (bad / "unreadable.jpg").chmod(0)
    os.mkfifo(bad / "pipe.jpg")
    os.symlink("loop", bad / "loop")
    os.symlink("..", bad / "up")
    return root


@pytest.fixture(scope="module")
def local_scan(collection, tmp_path_factory, untrained_checkpoint) -> dict:
    """One in-process scan of the collection with two models; the report, CSV and summary."""
    out = tmp_path_factory.mktemp("report")
    before = _snapshot(collection)
    result = scan(collection, "-m", TINY_CLIP_MODEL, "-m", untrained_checkpoint, "--workers", "0",
                  "--report", out / "r.jsonl", "--csv", out / "r.csv", "--json")
    assert result.exit_code == 0, result.output
    return {"rows": read_report(out / "r.jsonl"), "csv": out / "r.csv", "summary": json.loads(result.stdout),
            "unchanged": before == _snapshot(collection), "root": collection}


def _row(scanned: dict, name: str) -> dict:
    return scanned["rows"][str(scanned["root"] / name)]


def test_marked_and_clean_files_with_two_models(local_scan):
    marked = _row(local_scan, "marked.png")
    assert marked["type"] == "image" and marked["detected"] and marked["message"] == "hi"
    assert marked["best_model"] == "mbrs-64" and marked["error"] is None
    assert [r["model"] for r in marked["results"]] == ["mbrs-64", "tiny"]
    assert marked["p_value"] == min(r["p_value"] for r in marked["results"]) < 1e-6
    assert len(marked["sha256"]) == 64 and marked["size"] > 0 and marked["ms"]["total"] > 0
    clean = _row(local_scan, "clean.jpg")
    assert clean["detected"] is False and clean["message"] is None and clean["error"] is None

    half = _row(local_scan, "video/half.mp4")
    assert half["type"] == "video" and half["detected"] and half["message"] == "hi"
    # Frames 5-9 of 10 are marked. The scan reads runs of 8 frames as their means, as extract does: the first run
    # holds 3 marked frames and reads marked, so the timeline covers every frame; extract --per-frame finds the
    # splice frame by frame.
    assert half["frames"] == 10 and half["frames_per_read"] == 8
    assert half["detected_share"] == 1.0 and half["segments"] == [[0, 9]]
    assert {"frames", "frames_per_read", "detected_share", "segments"} <= set(half["results"][1])
    marker = wmark.load(TINY_CLIP_MODEL)  # the scan decides as extract does
    assert half["p_value"] == marker.extract_video(local_scan["root"] / "video/half.mp4").p_value
    each = marker.extract_video(local_scan["root"] / "video/half.mp4", per_frame=True)
    assert each.frames_per_read == 1 and each.detected_share == 0.5 and each.segments == [[5, 9]]
    assert marked["p_value"] == marker.extract(local_scan["root"] / "marked.png").p_value
    assert _row(local_scan, "video/clean.mp4")["detected"] is False


def test_bad_inputs_give_error_rows(local_scan):
    expected = {
        "bad/bomb.png": "too large", "bad/empty.jpg": "empty file", "bad/truncated.jpg": "truncated",
        "bad/text.jpg": "neither an image nor a video", "bad/audio.mp4": "neither an image nor a video",
        "bad/pipe.jpg": "not a regular file", "bad/loop": "symbolic links", "bad/up": "already walked",
    }
    if os.geteuid() != 0:  # root reads a file whatever its mode
        expected["bad/unreadable.jpg"] = "Permission denied"
    for name, reason in expected.items():
        row = _row(local_scan, name)
        assert reason in row["error"], (name, row["error"])
        assert row["detected"] is None and row["results"] == []
    assert _row(local_scan, "bad/bomb.png")["type"] == "image"
    assert _row(local_scan, "bad/text.jpg")["type"] == "other"
    summary = local_scan["summary"]
    errors = len(expected)
    assert summary["files_scanned"] == len(local_scan["rows"]) == 13
    assert (summary["files_detected"], summary["files_clean"], summary["files_failed"]) == (2, 13 - 2 - errors, errors)


def test_inputs_are_not_modified_and_csv_is_flat(local_scan):
    assert local_scan["unchanged"]
    with open(local_scan["csv"], newline="") as handle:
        records = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    assert len(records) == 13
    assert records["half.mp4"]["segments"] == "0-9" and records["half.mp4"]["frames_per_read"] == "8"
    assert records["half.mp4"]["detected_by"] == "mbrs-64"
    assert records["clean.jpg"]["detected"] == "False" and records["text.jpg"]["error"]


def test_dask_local_cluster_gives_the_same_rows(local_scan, untrained_checkpoint, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask.jsonl"
    result = scan(local_scan["root"], "-m", TINY_CLIP_MODEL, "-m", untrained_checkpoint, "--engine", "dask",
                  "--workers", "0", "--report", out)
    assert result.exit_code == 0, result.output

    def without_timings(row: dict) -> dict:
        return {**row, "ms": None, "results": [{**r, "ms": None} for r in row["results"]]}

    dask_rows = read_report(out)
    assert dask_rows.keys() == local_scan["rows"].keys()
    for path, row in dask_rows.items():
        assert without_timings(row) == without_timings(local_scan["rows"][path])


def test_stdin_list_of_paths(collection, tmp_path):
    listing = f"{collection / 'marked.png'}\n{collection / 'video'}\n{collection / 'nope.png'}\n"
    result = scan("-", "-m", TINY_CLIP_MODEL, "--workers", "0", input=listing)
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows.keys() == {"marked.png", "half.mp4", "clean.mp4", "nope.png"}
    assert rows["marked.png"]["detected"] and "No such file" in rows["nope.png"]["error"]
    assert "scanned 4 files" in result.stderr and "1 errors" in result.stderr


def test_timeout_stops_a_long_video_and_the_scan_goes_on(tmp_path):
    grey = np.full((64, 64, 3), 128, np.uint8)
    _video(tmp_path / "long.mp4", [grey] * 3000)  # a minute of frames to decode and check one by one
    Image.fromarray(grey).save(tmp_path / "small.png")
    out = tmp_path / "r.jsonl"
    start = time.monotonic()
    result = scan(tmp_path, "--workers", "1", "--timeout", "2", "--report", out)
    assert result.exit_code == 0, result.output
    rows = {Path(p).name: r for p, r in read_report(out).items()}
    assert rows["long.mp4"]["error"].startswith("timed out") and rows["small.png"]["error"] is None
    assert time.monotonic() - start < 40


def test_pool_replaces_a_stuck_or_crashed_worker():
    tasks = [functools.partial(time.sleep, 60), functools.partial(os._exit, 3), functools.partial(abs, -2)]
    with ProcessPool(operator.call, 1, limit=1.0) as pool:
        outcomes = {task.func.__name__: (result, failure) for task, result, failure in pool.imap_unordered(tasks)}
    assert outcomes["sleep"][1].startswith("timed out")
    assert outcomes["_exit"][1].startswith("crashed") and "exit code 3" in outcomes["_exit"][1]
    assert outcomes["abs"] == (2, None)


def test_resume_after_sigkill_reports_every_file_once(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    generator = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(generator.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photos / f"{i:03}.png")
    out = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "wmark", "scan", str(photos), "--workers", "0", "--report", str(out)]
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.read_bytes().count(b"\n") < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "the scan ended before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    written = out.read_bytes()
    assert written.endswith(b"\n") and 3 <= written.count(b"\n") < 30  # whole lines only
    with open(out, "ab") as report:  # as if a power cut had torn a line
        report.write(b'{"path": "/torn')

    resumed = scan(photos, "--workers", "0", "--report", out, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert "dropped an incomplete last line" in resumed.stderr
    rows = read_report(out)
    assert sorted(Path(p).name for p in rows) == [f"{i:03}.png" for i in range(30)]
    assert all(r["error"] is None for r in rows.values())
    summary = json.loads(resumed.stdout)
    assert summary["files_skipped"] == written.count(b"\n") and summary["files_scanned"] == 30 - summary["files_skipped"]


@pytest.mark.parametrize("args, message", [
    (["-m", "no-such-model"], "unknown model"),
    (["--fpr", "2"], "false-positive rate"),
    (["--timeout", "0"], "--timeout"),
    (["--resume"], "--resume needs --report"),
    (["--engine", "ray"], "unknown engine"),
    (["--address", "tcp://127.0.0.1:1"], "--address is for --engine dask"),
    (["--workers", "-1"], "--workers"),
])
def test_bad_usage_exits_2(photo, args, message):
    result = scan(photo, *args)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_an_existing_report_is_not_overwritten(photo, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("keep me\n")
    result = scan(photo, "--workers", "0", "--report", out)
    assert result.exit_code == 2 and "--resume" in result.stderr and out.read_text() == "keep me\n"
    result = scan(photo, "--workers", "0", "--report", out, "--resume")
    assert result.exit_code == 2 and "not a wmark scan report" in result.stderr
    assert scan(photo, "--workers", "0", "--report", out, "--force").exit_code == 0
    assert list(read_report(out)) == [str(photo)]


def test_missing_path_exits_2(tmp_path):
    assert scan().exit_code == 2
    result = scan(tmp_path / "nope")
    assert result.exit_code == 2 and "no such file or folder" in result.stderr
