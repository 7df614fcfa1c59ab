"""Video files <-> float frame batches, through PyAV (FFmpeg), in constant memory.

``read_frames`` streams (indices, (B, 3, H, W) float) batches from a file. ``transcode`` decodes a
video, passes its frames through a function in batches, encodes them and copies the audio and
subtitle streams as packets, untouched. Every frame keeps its timestamp, so the frame count, the
frame rate and variable frame rates survive. Outputs are written atomically. User-caused failures
raise ``WmarkError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from wmark.errors import WmarkError
from wmark.interface.defaults import FRAME_BATCH, VIDEO_CODEC, VIDEO_CRF, VIDEO_PRESET
from wmark.io.atomic import atomic_output, check_folder
from wmark.io.yuv import YuvFrames

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".mts", ".y4m", ".ogv"})
# Encoders behind the user-facing codec names, and how each takes a quality and a speed setting.
ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_COPIED = ("audio", "subtitle")


@dataclass
class VideoInfo:
    """What a video holds: the first video stream's geometry, codec, rate and frame count."""

    width: int
    height: int
    frames: int
    rate: float | None
    codec: str
    duration: float | None
    audio_streams: int
    subtitle_streams: int


def _open(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise WmarkError(f"no such file: {path}")
    try:
        container = av.open(str(path), "r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise WmarkError(f"cannot read video {path}: {_reason(exc)}") from None
    if not _video_streams(container):
        container.close()
        raise WmarkError(f"{path} has no video stream")
    return container


def _video_streams(container) -> list:
    """Video streams that move: cover art (an MP3's or M4A's attached picture) does not count."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether FFmpeg opens ``path`` (by content, not by name) and finds a video stream in it."""
    try:
        with av.open(str(path), "r", metadata_errors="ignore") as container:
            return bool(_video_streams(container)) and container.format.name not in _STILL_FORMATS
    except (av.FFmpegError, UnicodeDecodeError, OSError):
        return False


# FFmpeg demuxers that open still images; Pillow handles those.
_STILL_FORMATS = frozenset({
    "image2", "png_pipe", "jpeg_pipe", "webp_pipe", "tiff_pipe", "bmp_pipe", "gif", "gif_pipe", "jpegls_pipe",
    "pgm_pipe", "ppm_pipe", "pam_pipe", "qoi_pipe", "svg_pipe", "xbm_pipe", "psd_pipe", "dpx_pipe",
})


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header; counts packets when the container does not store a frame count."""
    with _open(path) as container:
        stream = _video_streams(container)[0]
        frames = stream.frames or sum(1 for p in container.demux(stream) if p.size)
        duration = float(container.duration / av.time_base) if container.duration else None
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frames=frames,
            rate=float(stream.average_rate) if stream.average_rate else None,
            codec=stream.codec_context.name,
            duration=duration,
            audio_streams=len(container.streams.audio),
            subtitle_streams=len(container.streams.subtitles),
        )


def _decoded(container, path: Path) -> Iterator:
    stream = _video_streams(container)[0]
    stream.thread_type = "AUTO"
    try:
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        raise WmarkError(f"cannot decode {path}: {_reason(exc)}") from None


def spread_frames(path: str | os.PathLike, frames: int | None) -> Callable[[int], bool] | None:
    """A frame selector for ``frames`` indices spread evenly over the video (None: every frame)."""
    if frames is None:
        return None
    check_options(frames=frames)
    total = probe(path).frames
    return set(np.linspace(0, total - 1, min(frames, total)).round().astype(int).tolist()).__contains__


def read_frames(path: str | os.PathLike, batch: int = FRAME_BATCH, select: Callable[[int], bool] | None = None
                ) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Stream (frame indices, (B, 3, H, W) float RGB in [0, 1]) batches; ``select`` picks frames."""
    for indices, frames in read_yuv(path, batch, select):
        yield indices, frames.rgb()


def read_yuv(path: str | os.PathLike, batch: int = FRAME_BATCH, select: Callable[[int], bool] | None = None
             ) -> Iterator[tuple[list[int], YuvFrames]]:
    """Stream (frame indices, 4:2:0 planes) batches; ``select`` picks frames."""
    _check_batch(batch)
    with _open(path) as container:
        indices, frames = [], []
        for index, frame in enumerate(_decoded(container, Path(path))):
            if select is None or select(index):
                indices.append(index)
                frames.append(frame)
            if len(frames) == batch:
                yield indices, to_planes(frames)
                indices, frames = [], []
        if frames:
            yield indices, to_planes(frames)


def to_planes(frames: list) -> YuvFrames:
    """PyAV frames (any pixel format; 8-bit 4:2:0 passes untouched) -> YuvFrames."""
    first = frames[0]
    height, width = first.height, first.width
    if height % 2 or width % 2:
        raise WmarkError(f"frames are {width}x{height}; 4:2:0 video needs an even width and height")
    arrays = np.stack([(f if f.format.name == "yuv420p" else f.reformat(format="yuv420p")).to_ndarray()
                       for f in frames])
    chroma = arrays[:, height:].reshape(len(frames), 2, height // 2, width // 2)
    planes = torch.from_numpy(arrays[:, :height]), torch.from_numpy(chroma[:, 0]), torch.from_numpy(chroma[:, 1])
    return YuvFrames(*planes, **YuvFrames.matrix(first.colorspace, first.color_range))


def from_planes(frames: YuvFrames) -> list:
    """YuvFrames -> yuv420p PyAV frames (without timestamps)."""
    y, u, v = (p.cpu().numpy() for p in (frames.y, frames.u, frames.v))
    height, width = y.shape[1:]
    chroma = np.stack([u, v], 1).reshape(len(y), height // 2, width)
    return [av.VideoFrame.from_ndarray(np.concatenate([luma, c]), format="yuv420p") for luma, c in zip(y, chroma)]


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise WmarkError(f"batch must be at least 1, got {batch}")


def check_options(codec: str = VIDEO_CODEC, crf: int = VIDEO_CRF, preset: str = VIDEO_PRESET, batch: int = FRAME_BATCH, every: int = 1,
                  frames: int | None = None) -> None:
    """Check video options before any work (a folder may hold videos after its images)."""
    encoder_options(codec, crf, preset)
    _check_batch(batch)
    if every < 1:
        raise WmarkError(f"--every must be at least 1, got {every}")
    if frames is not None and frames < 1:
        raise WmarkError(f"--frames must be at least 1, got {frames}")


def encoder_options(codec: str, crf: int, preset: str) -> dict:
    """The FFmpeg encoder options for ``codec``; checks the values and the build."""
    if codec not in ENCODERS:
        raise WmarkError(f"unknown video codec {codec!r}; valid: {', '.join(ENCODERS)}")
    encoder = ENCODERS[codec]
    try:
        av.codec.Codec(encoder, "w")
    except ValueError:
        raise WmarkError(f"this PyAV build has no {encoder} encoder for {codec}") from None
    top = 63 if codec in ("vp9", "av1") else 51
    if not 0 <= crf <= top:
        raise WmarkError(f"crf for {codec} must be in [0, {top}], got {crf}")
    if codec in ("h264", "h265"):
        if preset not in _X26X_PRESETS:
            raise WmarkError(f"unknown preset {preset!r}; valid: {', '.join(_X26X_PRESETS)}")
        options = {"crf": str(crf), "preset": preset}
        return options | ({"x265-params": "log-level=error"} if codec == "h265" else {})
    if codec == "vp9":
        return {"crf": str(crf), "b": "0", "row-mt": "1"}
    return {"crf": str(crf)}


def transcode(source: str | os.PathLike, output: str | os.PathLike,
              process: Callable[[YuvFrames], YuvFrames], *, codec: str = VIDEO_CODEC, crf: int = VIDEO_CRF,
              preset: str = VIDEO_PRESET, batch: int = FRAME_BATCH,
              progress: Callable[[int], None] | None = None) -> VideoInfo:
    """Decode ``source``, map its frames through ``process`` in order, encode them into ``output``.

    ``process`` takes and returns :class:`YuvFrames` (8-bit 4:2:0 planes, so that what it leaves
    alone passes bit-exactly) of the same size (the encoder would rescale others silently); it is
    called on consecutive frames, so it may keep state (a key frame's residual). The output is
    yuv420p. Audio and subtitle streams are copied as packets.
    ``progress`` is called with the number of frames written after each batch.
    """
    source, output = Path(source), Path(output)
    _check_batch(batch)
    check_folder(output)
    options = encoder_options(codec, crf, preset)
    info = probe(source)
    if info.width % 2 or info.height % 2:
        raise WmarkError(f"{source} is {info.width}x{info.height}; yuv420p needs an even width and height")
    with _open(source) as container, atomic_output(output) as tmp:
        try:
            with av.open(str(tmp), "w") as out:
                written = _transcode_streams(container, out, process, codec, options, batch, progress)
        except (av.FFmpegError, ValueError) as exc:
            raise WmarkError(f"cannot write {output} with {codec}: {_reason(exc)}") from None
        if written == 0:
            raise WmarkError(f"{source}: no frame could be decoded")
    return info


def _transcode_streams(container, out, process, codec, options, batch, progress) -> int:
    video = _video_streams(container)[0]
    copied = [s for s in container.streams if s.type in _COPIED]
    target = out.add_stream(ENCODERS[codec], rate=video.average_rate or Fraction(25))
    target.width, target.height, target.pix_fmt = video.codec_context.width, video.codec_context.height, "yuv420p"
    target.time_base = video.time_base
    target.codec_context.time_base = video.time_base
    target.options = options
    for tag in ("colorspace", "color_primaries", "color_trc", "color_range"):  # keep the source's colour tags
        setattr(target.codec_context, tag, getattr(video.codec_context, tag))
    out.metadata.update(container.metadata)
    target.metadata.update(video.metadata)
    if codec == "h265" and Path(out.name).suffix.lower() in (".mp4", ".m4v", ".mov"):
        target.codec_tag = "hvc1"  # what Apple players require; FFmpeg's default is hev1
    mapping = {s.index: out.add_stream_from_template(s) for s in copied}
    pending: list = []
    written = 0
    last_pts = [None]

    def timestamp(frame) -> int:
        """The frame's pts; AVI and other DTS-only inputs give none or out-of-order ones: count on."""
        pts = frame.pts
        if pts is None or (last_pts[0] is not None and pts <= last_pts[0]):
            pts = 0 if last_pts[0] is None else last_pts[0] + 1
        last_pts[0] = pts
        return pts

    def flush() -> int:
        processed = process(to_planes(pending))
        if tuple(processed.y.shape[-2:]) != (target.height, target.width):
            height, width = processed.y.shape[-2:]
            raise WmarkError(f"the frame process returned {width}x{height} frames for a "
                             f"{target.width}x{target.height} video; transcode keeps the frame size")
        for frame, original in zip(from_planes(processed), pending):
            frame.pts, frame.time_base = timestamp(original), original.time_base
            frame.colorspace, frame.color_range = original.colorspace, original.color_range
            out.mux(target.encode(frame))
        done = len(pending)
        pending.clear()
        if progress is not None:
            progress(done)
        return done

    for packet in container.demux(video, *copied):
        if packet.stream.index in mapping:
            if packet.dts is not None:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
            continue
        for frame in _decode_packet(packet, container):
            pending.append(frame)
            if len(pending) == batch:
                written += flush()
    if pending:
        written += flush()
    out.mux(target.encode(None))
    return written


def _decode_packet(packet, container) -> list:
    try:
        return packet.decode()
    except av.FFmpegError as exc:
        raise WmarkError(f"cannot decode {container.name}: {_reason(exc)}") from None
