"""Videos: marking a file's frames, and the one recipe that reads one, for ``extract``, ``scan`` and ``bench``.

Reading: the pose is found on :data:`SAMPLE_FRAMES` frames spread over the video (:func:`find_pose`), then the
frames are decoded once, in batches of 4:2:0 planes, averaged in runs of consecutive frames, and every reader
decodes every run under its own pose (:func:`read`); the frames' logits are combined for the video's decision and
give its timeline (:func:`timeline`).
"""
from __future__ import annotations

from contextlib import closing, nullcontext
from itertools import chain
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from wmark import pipeline
from wmark.errors import WmarkError
from wmark.interface.defaults import DEFAULT_FPR, FRAME_BATCH, VIDEO_CODEC, VIDEO_CRF, VIDEO_PRESET
from wmark.io.video import VIDEO_SUFFIXES, check_options, read_yuv, spread_frames, transcode
from wmark.io.yuv import YuvFrames
from wmark.stats import bit_confidence, combine_frames, match_p_value
from wmark.sync.search import Level, Pose
from wmark.watermarker.decision import Decision, video_factor
from wmark.watermarker.embedder import Embedder
from wmark.watermarker.reader import Reader
from wmark.watermarker.reports import Extraction, VideoEmbedReport, VideoExtraction, finite_round
from wmark.watermarker.search import plan

SAMPLE_FRAMES = 8
"""Frames of a video, spread evenly, that a search finds the pose on and that verify a marked video."""


def sample_logits(reader: Reader, path: str | Path) -> torch.Tensor:
    """The combined logits of :data:`SAMPLE_FRAMES` frames spread over the video."""
    _, [logits] = read([reader], path, [Pose()], frames=SAMPLE_FRAMES)
    return combine_frames(logits)


def find_pose(reader: Reader, path: str | Path, level: Level, template: bool,
              detects: Callable[[torch.Tensor, int], bool]) -> Pose:
    """The first pose of ``level`` (the identity, then :func:`~wmark.watermarker.search.plan`'s) under which the
    combined logits of a few frames spread over the video are detected (``detects(logits, factor)``, the frames
    read once), else the identity."""
    if level.hypotheses == 1:
        return Pose()
    sample = [frames.to(reader.device) for _, frames in
              read_yuv(path, batch=SAMPLE_FRAMES, select=spread_frames(path, SAMPLE_FRAMES))]
    if not sample:
        return Pose()
    rgb = torch.cat([frames.rgb() for frames in sample])
    for pose in chain([Pose()], plan(reader, rgb, level)[1]):
        if detects(combine_frames(torch.cat([reader.yuv(frames, pose) for frames in sample])),
                   video_factor(level, pose, template)):
            return pose
    return Pose()


def read(readers: Sequence[Reader], path: str | Path, poses: Sequence[Pose], frames: int | None = None,
         batch: int = FRAME_BATCH, timed: Callable | None = None,
         group: int = 1) -> tuple[list[int], list[torch.Tensor]]:
    """(frame indices, logits (N, L) for each reader): the video's frames (all, or ``frames`` of them spread evenly)
    decoded once, each reader reading each batch under its pose. With ``group`` > 1 each run of that many
    consecutive frames of a batch is read as its mean (:meth:`~wmark.io.yuv.YuvFrames.grouped`,
    :data:`~wmark.interface.defaults.FRAME_GROUP`) and its frames share its logits. ``timed(reader_index)``, where
    given, is a context manager around each reader's work (the scan's clock)."""
    indices: list[int] = []
    logits: list[list[torch.Tensor]] = [[] for _ in readers]
    with closing(read_yuv(path, batch=batch, select=spread_frames(path, frames))) as batches:
        for batch_indices, planes in batches:
            indices += batch_indices
            planes, counts = planes.grouped(group) if group > 1 else (planes, None)
            for i, (reader, pose) in enumerate(zip(readers, poses)):
                with timed(i) if timed is not None else nullcontext():
                    read_logits = reader.yuv(planes, pose)
                logits[i].append(read_logits if counts is None else read_logits.repeat_interleave(counts, 0))
    if not indices:
        raise WmarkError(f"{path}: no frame could be decoded")
    return indices, [torch.cat(each) for each in logits]


def segments(indices: list[int], flags: list[bool]) -> list[list[int]]:
    """Inclusive [first, last] runs of consecutive read frames whose flag is set."""
    runs: list[list[int]] = []
    previous = None
    for index, flag in zip(indices, flags):
        if flag and runs and previous is not None and runs[-1][1] == previous:
            runs[-1][1] = index
        elif flag:
            runs.append([index, index])
        previous = index
    return runs


def timeline(decision: Decision, indices: list[int], logits: torch.Tensor, key: str | None = None,
             fpr: float = DEFAULT_FPR, per_frame: bool = False, hypotheses: int = 1,
             frames_per_read: int = 1) -> VideoExtraction:
    """A video's extraction from its frames' logits (N, L): their combination decides, each frame gives the timeline
    (frames read as runs of ``frames_per_read`` share their run's logits, see :func:`read`).

    When the video's message is found, a frame counts as marked when its bits match that codeword (binomial test at
    ``fpr``): cheap, and it shows where this message is. Otherwise each frame is decoded on its own (several
    messages spliced together show up that way).
    """
    found = decision.extract(combine_frames(logits), key=key, fpr=fpr, hypotheses=hypotheses)
    if found.detected:
        codeword = decision.codeword(hex=found.hex, key=key)
        p_values = match_p_value(logits > 0, codeword).tolist()
        confidence = bit_confidence(logits).tolist()
        each = [Extraction(p <= fpr, found.message if p <= fpr else None, found.hex if p <= fpr else None,
                           "", p, round(c, 4), 0) for p, c in zip(p_values, confidence)]
    else:
        each = [decision.extract(row, key=key, fpr=fpr, hypotheses=hypotheses) for row in logits]
    flags = [e.detected for e in each]
    frames = None
    if per_frame:
        frames = [{"frame": i, "detected": e.detected, "p_value": e.p_value,
                   "bit_confidence": e.bit_confidence, "message": e.message} for i, e in zip(indices, each)]
    return VideoExtraction(**found.to_dict(), frames=len(indices), frames_per_read=frames_per_read,
                           detected_share=round(sum(flags) / len(flags), 4),
                           segments=segments(indices, flags), per_frame=frames)


def embed_video(embedder: Embedder, name: str, source: str | Path, output: str | Path, codeword: torch.Tensor,
                strength: float | None = None, *, codec: str = VIDEO_CODEC, crf: int = VIDEO_CRF, preset: str = VIDEO_PRESET,
                batch: int = FRAME_BATCH, every: int = 1, progress=None, floor: float | None = None) -> VideoEmbedReport:
    """Mark every frame of a video and encode it; audio and subtitles are copied untouched.

    With ``every`` = K > 1 the residual is computed on every K-th frame and reused for the frames up to the next
    one (temporal propagation, as in VideoSeal): K times fewer model calls, at some cost in quality on moving
    content. A frame under ``floor`` dB (luma PSNR) stops the job, and no output is left.
    """
    output = Path(output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise WmarkError(f"a marked video needs a video file name ({', '.join(sorted(VIDEO_SUFFIXES))}); got {output}")
    check_options(codec, crf, preset, batch, every)
    s = embedder.strength(strength)
    psnrs: list[float] = []
    state = {"frame": 0, "residual": None}

    def mark(frames: YuvFrames) -> YuvFrames:
        frames = frames.to(embedder.device)
        first = state["frame"]
        keys = [i for i in range(len(frames)) if (first + i) % every == 0]
        if keys:
            pipeline.check_size(frames.y.unsqueeze(1))
            fresh = embedder.frame_residual(frames if len(keys) == len(frames) else frames.take(keys), codeword)
        chosen = []
        for i in range(len(frames)):
            if i in keys:
                state["residual"] = fresh[keys.index(i)]
            chosen.append(state["residual"])
        residual = s * torch.stack(chosen)
        marked = frames.add(residual)
        psnrs.extend(marked.luma_psnr(frames).tolist())
        if floor is not None and min(psnrs) < floor:
            raise WmarkError(f"a marked frame would have a luma PSNR of {min(psnrs):.1f} dB, under the {floor:g} dB "
                             "floor; lower --strength or give --force")
        state["frame"] += len(frames)
        return marked

    info = transcode(source, output, mark, codec=codec, crf=crf, preset=preset, batch=batch, progress=progress)
    return VideoEmbedReport(
        path=str(output), input=str(source), model=name, frames=info.frames,
        psnr=finite_round(np.mean(psnrs)), psnr_min=finite_round(np.min(psnrs)),
        codeword="".join(map(str, codeword.tolist())), strength=s, codec=codec, crf=crf, every=every,
        warning=embedder.size_warning(name, info.height, info.width, "video"),
    )
