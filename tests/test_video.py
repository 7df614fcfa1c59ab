"""Video files: streaming I/O, embedding with the streams kept, extraction with a timeline, bad input."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import wmark
from tests.conftest import TINY_CLIP_MODEL
from tests.test_cli import assert_user_error, run
from wmark.errors import WmarkError
from wmark.io.media import media_kind
from wmark.io.video import probe, read_frames, read_yuv, transcode
from wmark.perception.jnd import luma as rgb_luma


def packets(path, kind):
    """(pts, payload) of every non-empty packet of the first stream of ``kind``."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def frame_pts(path):
    with av.open(str(path)) as container:
        return [f.pts for f in container.decode(video=0)]


def write_clip(path, frames, pts=None, codec="libx264", pix_fmt="yuv420p", time_base=Fraction(1, 1000)):
    """Encode (T, H, W, 3) uint8 frames with the given timestamps (in ``time_base``)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        stream.options = {"crf": "12"} if codec == "libx264" else {}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else 40 * i), time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def decoded(path):
    return torch.cat([x for _, x in read_frames(path, batch=8)])


@pytest.fixture(scope="module")
def marker():
    return wmark.load(TINY_CLIP_MODEL)


def test_probe_and_read_frames_in_batches(clip):
    info = probe(clip)
    assert (info.width, info.height, info.frames, info.rate, info.codec) == (160, 96, 20, 25.0, "h264")
    assert (info.audio_streams, info.subtitle_streams) == (1, 1)
    batches = list(read_frames(clip, batch=8))
    assert [len(i) for i, _ in batches] == [8, 8, 4]
    assert batches[0][1].shape == (8, 3, 96, 160) and batches[0][1].dtype == torch.float32
    picked = [i for i, _ in read_frames(clip, batch=8, select=lambda i: i % 5 == 0)]
    assert picked == [[0, 5, 10, 15]]


def test_media_kind_by_content(clip, photo, tmp_path):
    disguised = tmp_path / "movie.jpg"
    disguised.write_bytes(clip.read_bytes())
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert media_kind(photo) == "image" and media_kind(disguised) == "video"
    with pytest.raises(WmarkError, match="neither an image nor a video"):
        media_kind(text)


def planes(path):
    return [torch.cat([getattr(f, name) for _, f in read_yuv(path)]) for name in ("y", "u", "v")]


def test_plain_transcode_keeps_streams_timestamps_and_pixels(clip, tmp_path):
    out = tmp_path / "copy.mp4"
    transcode(clip, out, lambda frames: frames, batch=7, crf=0)  # x264 at CRF 0 is lossless
    assert probe(out).frames == 20 and frame_pts(out) == frame_pts(clip)
    assert packets(out, "audio") == packets(clip, "audio")
    assert packets(out, "subtitles") == packets(clip, "subtitles")
    assert all(torch.equal(a, b) for a, b in zip(planes(out), planes(clip)))


def test_transcode_refuses_a_process_that_changes_the_frame_size(clip, tmp_path):
    def crop(frames):
        return replace(frames, y=frames.y[:, 8:-8, 8:-8], u=frames.u[:, 4:-4, 4:-4], v=frames.v[:, 4:-4, 4:-4])

    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(WmarkError, match="keeps the frame size"):
        transcode(clip, folder / "cropped.mp4", crop)
    assert list(folder.iterdir()) == []  # no partial output


def test_yuv_frames_convert_like_ffmpeg(clip):
    _, frames = next(read_yuv(clip, batch=4))
    with av.open(str(clip)) as container:
        reference = np.stack([f.to_ndarray(format="gbrpf32le") for f, _ in zip(container.decode(video=0), range(4))])
    assert (frames.rgb() - torch.from_numpy(reference).permute(0, 3, 1, 2)).abs().mean() < 2 / 255
    change = torch.full((4, 3, 8, 8), 4 / 255)  # a grey shift: luma only
    shifted = frames.add_rgb(change)
    unclipped = frames.y < 250
    assert torch.equal(shifted.u, frames.u) and torch.equal(shifted.v, frames.v)
    assert ((shifted.y.int() - frames.y.int())[unclipped] == round(4 * 219 / 255)).all()  # limited range


def test_a_luma_residual_changes_the_y_plane_as_its_rgb_equivalent_does(clip):
    _, frames = next(read_yuv(clip, batch=4))
    change = torch.rand(4, 1, *frames.y.shape[-2:], generator=torch.Generator().manual_seed(0)) * 0.04 - 0.02
    assert torch.equal(frames.add_luma(change).y, frames.add_rgb(change.expand(-1, 3, -1, -1)).y)
    luma = frames.luma()
    assert luma.shape == (4, 1, *frames.y.shape[-2:]) and 0 <= luma.min() and luma.max() <= 1
    assert (luma - rgb_luma(frames.rgb())).abs().median() < 1 / 255


def test_grouped_frames_are_the_means_of_consecutive_runs(clip):
    _, frames = next(read_yuv(clip, batch=7))
    runs, counts = frames.grouped(3)
    assert counts.tolist() == [3, 3, 1] and len(runs) == 3
    assert torch.allclose(runs.y[0], frames.y[:3].float().mean(0)) and torch.equal(runs.u[2], frames.u[6].float())
    assert (runs.rgb() - torch.stack([frames.take(slice(0, 3)).rgb().mean(0), frames.take(slice(3, 6)).rgb().mean(0),
                                      frames.take([6]).rgb()[0]])).abs().max() < 1e-5  # the conversion is linear


def test_a_whole_video_is_read_in_runs_unless_each_frame_is_asked_for(marker, clip, tmp_path):
    marked = tmp_path / "marked.mp4"
    marker.embed_video(clip, marked, marker.codeword("run"), crf=12)
    runs = marker.extract_video(marked)
    assert runs.message == "run" and runs.frames == 20 and runs.frames_per_read == 8
    assert runs.segments == [[0, 19]]
    each = marker.extract_video(marked, per_frame=True)
    assert each.message == "run" and each.frames_per_read == 1 and len(each.per_frame) == 20


def test_embed_extract_video_cli(clip, tmp_path):
    before = hashlib.sha256(clip.read_bytes()).hexdigest()
    out = tmp_path / "marked.mp4"
    result = run("embed", "-m", TINY_CLIP_MODEL, clip, out, "--message", "hi!", "--batch", "6", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["frames"] == 20 and report["psnr"] > 38 and report["codec"] == "h264"
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == before
    assert frame_pts(out) == frame_pts(clip) and packets(out, "audio") == packets(clip, "audio")

    found = json.loads(run("extract", "-m", TINY_CLIP_MODEL, out, "--json", "--per-frame").stdout)
    assert found["detected"] and found["message"] == "hi!" and found["frames"] == 20
    assert found["detected_share"] >= 0.9 and len(found["per_frame"]) == 20
    sampled = json.loads(run("extract", "-m", TINY_CLIP_MODEL, out, "--json", "--frames", "4").stdout)
    assert sampled["frames"] == 4 and sampled["message"] == "hi!"
    assert run("detect", "-m", TINY_CLIP_MODEL, out).exit_code == 0
    assert run("detect", "-m", TINY_CLIP_MODEL, clip).exit_code == 1
    assert run("detect", "-m", TINY_CLIP_MODEL, out, "--expect", "hi!").exit_code == 0


def test_other_containers_and_an_output_folder(marker, clip, tmp_path):
    assert marker.embed_file(clip, tmp_path / "marked.ts", message="ts").frames == 20  # MPEG-TS
    assert marker.extract(tmp_path / "marked.ts").message == "ts"
    folder = tmp_path / "into"
    folder.mkdir()
    assert run("embed", "-m", TINY_CLIP_MODEL, clip, folder, "--message", "f").exit_code == 0
    assert (folder / clip.name).is_file()


def test_every_k_reuses_key_frame_residuals(marker, clip, tmp_path):
    codeword = marker.codeword("ok")
    every = marker.embed_video(clip, tmp_path / "k4.mp4", codeword, every=4, crf=12)
    assert every.every == 4 and every.psnr > 35
    assert marker.extract(tmp_path / "k4.mp4").message == "ok"


def test_variable_frame_rate_is_kept(marker, clip, tmp_path):
    frames = (decoded(clip)[:8].movedim(1, -1) * 255).round().to(torch.uint8).numpy()
    pts = [0, 40, 50, 130, 140, 300, 310, 500]
    source = tmp_path / "vfr.mkv"
    write_clip(source, frames, pts)
    out = tmp_path / "vfr-marked.mkv"
    marker.embed_video(source, out, marker.codeword("v"))
    assert frame_pts(out) == frame_pts(source) == pts


def test_timeline_shows_the_spliced_segment(marker, clip, tmp_path):
    marked = tmp_path / "marked.mp4"
    marker.embed_video(clip, marked, marker.codeword("cut"), crf=12)
    spliced = torch.cat([decoded(marked)[:10], decoded(clip)[10:]])
    source = tmp_path / "spliced.mp4"
    write_clip(source, (spliced.movedim(1, -1) * 255).round().to(torch.uint8).numpy(), pix_fmt="yuv444p")
    found = marker.extract_video(source, per_frame=True)
    flags = [f["detected"] for f in found.per_frame]
    assert sum(flags[:10]) >= 8 and not any(flags[10:])
    assert found.segments and all(last <= 9 for _, last in found.segments)


def test_bad_videos(clip, tmp_path):
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    odd = tmp_path / "odd.mkv"
    write_clip(odd, np.zeros((3, 97, 161, 3), np.uint8), codec="ffv1", pix_fmt="yuv444p")

    assert_user_error(run("extract", audio_only), "neither an image nor a video")
    assert_user_error(run("extract", truncated), "truncated.mp4")
    assert_user_error(run("embed", odd, tmp_path / "o.mkv", "--message", "x"), "needs an even width and height")
    assert_user_error(run("embed", clip, tmp_path / "o.mp4", "--message", "x", "--codec", "mpeg2"), "unknown video codec")
    assert_user_error(run("embed", clip, tmp_path / "o.mp4", "--message", "x", "--crf", "99"), "crf for h264")
    assert_user_error(run("embed", clip, tmp_path / "o.mkv", "--message", "x"), "does not support 'mov_text'")
    assert_user_error(run("embed", clip, tmp_path / "o.png", "--message", "x"), "needs a video file name")
    assert_user_error(run("embed", clip, clip, "--message", "x"), "refusing to overwrite the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.m4a", "odd.mkv", "truncated.mp4"]


def test_folder_of_images_and_videos(clip, photo, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip.read_bytes())
    (folder / "photo.jpg").write_bytes(photo.read_bytes())
    (folder / "fake.jpg").write_text("not a picture")
    result = run("embed", "-m", TINY_CLIP_MODEL, folder, tmp_path / "out", "--message", "ok")
    assert result.exit_code == 2 and "fake.jpg" in result.stderr
    assert "PSNR-Y" in result.stdout and "PSNR " in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.mp4", "photo.jpg"]
    found = json.loads(run("extract", "-m", TINY_CLIP_MODEL, tmp_path / "out", "--json").stdout)
    assert [r["message"] for r in found["results"]] == ["ok", "ok"]


def test_a_video_too_small_for_the_default_tile_grid_says_so_and_names_the_model_to_use(clip, tmp_path):
    result = run("embed", clip, tmp_path / "marked.mp4", "--message", "hi", "--json")
    assert result.exit_code == 1  # written, but it does not read back
    report = json.loads(result.stdout)
    assert report["model"] == "mbrs-64-tiled" and "160x96 video is too small" in report["warning"]
    assert "too small for this model's tile grid: try -m mbrs-64" in result.stderr
