"""Video codecs: real encoders through PyAV (FFmpeg), in memory (the differentiable
stand-in for H.264 is in `h264_proxy`).

Real codecs take clips (B, T, 3, H, W) and encode each clip as one yuv420p stream
at 25 fps; an image batch (B, 3, H, W) is B one-frame clips. The packets go from
encoder to decoder in memory with no container: a muxer would not change a pixel,
and MP4 rejects the garbage DTS that FFmpeg's libx265 wrapper gives clips of one or
two frames. Frames are padded by edge replication to even sizes of at least
`min_side` and cropped back. Encoders run single-threaded, so the output does not
depend on the machine's core count. Only codecs this PyAV build has are registered;
asking for another says which encoder and decoder are missing.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

from .base import PerSample, from_uint8, param, register, register_unavailable, straight_through, to_uint8
from .catalogue import has_codec

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config at info level

_RATE = 25
_X26X_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)


def _roundtrip(frames: np.ndarray, encoder: str, decoder: str, options: dict) -> np.ndarray:
    """Encode (T, H, W, 3) uint8 frames to packets in memory and decode them back."""
    t, h, w = frames.shape[:3]
    enc = av.CodecContext.create(encoder, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, _RATE), Fraction(_RATE)
    enc.options = options
    enc.thread_count = 1  # PyAV's default (0, automatic) overrides the "threads" option; x264 then varies
    packets = []
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = av.CodecContext.create(decoder, "r")
    decoded = [f.to_ndarray(format="rgb24") for p in [*packets, None] for f in dec.decode(p)]
    if len(decoded) != t:
        raise RuntimeError(f"{encoder} -> {decoder} returned {len(decoded)} frames for {t}")
    return np.stack(decoded)


class VideoCodec(PerSample):
    """A real video codec with the straight-through estimator; one crf per clip."""

    key = "crf"
    grad = "ste"
    frames_native = True
    encoder: str
    decoder: str
    min_side = 64  # SVT-AV1 turns tools off below 64; others are indifferent

    def encoder_options(self, crf: int) -> dict:
        raise NotImplementedError

    def transform(self, x, params, cover):
        clips = x if x.dim() == 5 else x.unsqueeze(1)
        b, t, _, h, w = clips.shape
        frames = to_uint8(clips.flatten(0, 1)).reshape(b, t, h, w, 3)
        ph = max(self.min_side, h + h % 2) - h
        pw = max(self.min_side, w + w % 2) - w
        frames = np.pad(frames, ((0, 0), (0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        out = [
            _roundtrip(clip, self.encoder, self.decoder, self.encoder_options(int(crf)))[:, :h, :w]
            for clip, crf in zip(frames, params["crf"].tolist())
        ]
        return straight_through(x, from_uint8(np.concatenate(out), like=x).reshape(x.shape))


class _X26x(VideoCodec):
    params_doc = {
        "crf": param(28, "constant rate factor, 0 (best) - 51; lo-hi per clip", lo=0, hi=51),
        "preset": param("medium", "encoder speed preset", choices=_X26X_PRESETS),
    }


class H264(_X26x):
    """H.264/AVC through libx264, decoded by FFmpeg's h264."""

    encoder, decoder = "libx264", "h264"

    def encoder_options(self, crf):
        return {"crf": str(crf), "preset": self.options["preset"], "threads": "1"}


class H265(_X26x):
    """H.265/HEVC through libx265, decoded by FFmpeg's hevc. Frames are padded to at
    least 96x96: on smaller ones libx265 reads uninitialised memory (output varies run
    to run at 64 px wide) or corrupts its heap (32 px high).
    """

    encoder, decoder = "libx265", "hevc"
    min_side = 96

    def encoder_options(self, crf):
        params = "log-level=none:pools=none:frame-threads=1"
        return {"crf": str(crf), "preset": self.options["preset"], "x265-params": params}


class VP9(VideoCodec):
    """VP9 through libvpx-vp9 in constant-quality mode, decoded by FFmpeg's vp9."""

    encoder, decoder = "libvpx-vp9", "vp9"
    params_doc = {
        "crf": param(35, "constant quality level, 0 (best) - 63; lo-hi per clip", lo=0, hi=63),
        "preset": param(4, "libvpx cpu-used: 0 slowest/best - 8 fastest", lo=0, hi=8, range=False),
    }

    def encoder_options(self, crf):
        return {
            "crf": str(crf), "b": "0", "deadline": "good",
            "cpu-used": str(self.options["preset"]), "threads": "1",
        }


class AV1SVT(VideoCodec):
    """AV1 through SVT-AV1, decoded by dav1d."""

    encoder, decoder = "libsvtav1", "libdav1d"
    params_doc = {
        "crf": param(35, "constant rate factor, 1 (best) - 63; lo-hi per clip", lo=1, hi=63),
        "preset": param(8, "SVT-AV1 preset: 0 slowest/best - 13 fastest", lo=0, hi=13, range=False),
    }

    def encoder_options(self, crf):
        return {"crf": str(crf), "preset": str(self.options["preset"]), "svtav1-params": "lp=1"}


class AV1AOM(VideoCodec):
    """AV1 through libaom, decoded by dav1d."""

    encoder, decoder = "libaom-av1", "libdav1d"
    params_doc = {
        "crf": param(35, "constant quality level, 0 (best) - 63; lo-hi per clip", lo=0, hi=63),
        "preset": param(6, "libaom cpu-used: 0 slowest/best - 8 fastest", lo=0, hi=8, range=False),
    }

    def encoder_options(self, crf):
        return {
            "crf": str(crf), "b": "0", "cpu-used": str(self.options["preset"]),
            "row-mt": "0", "threads": "1",
        }


CODEC_CANDIDATES = {"h264": (H264,), "h265": (H265,), "vp9": (VP9,), "av1": (AV1SVT, AV1AOM)}
_CODEC_ALIASES = {"h265": ("hevc",)}


def _register_available():
    """Register each codec name under the first encoder (and decoder) this build has;
    record the others as unavailable, naming what is missing."""
    for name, classes in CODEC_CANDIDATES.items():
        found = next((c for c in classes if has_codec(c.encoder, "w") and has_codec(c.decoder, "r")), None)
        if found is not None:
            register(name, *_CODEC_ALIASES.get(name, ()))(found)
        else:
            pairs = " or ".join(f"{c.encoder} + {c.decoder}" for c in classes)
            why = f"this PyAV (FFmpeg) build has no {pairs} (encoder + decoder)"
            register_unavailable(name, why, *_CODEC_ALIASES.get(name, ()))


_register_available()
