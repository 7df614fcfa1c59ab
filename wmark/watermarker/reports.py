"""The results of embedding, extraction and detection, as the command line prints them (``to_dict``)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from wmark.errors import WmarkError
from wmark.sync.search import Pose


class Report:
    """A result that the CLI prints as JSON."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Extraction(Report):
    """What a blind extraction found. ``codeword`` is the raw decoded codeword, before ECC. ``transform``,
    ``rotation`` and ``reframe``: the pose it was read under (see :mod:`wmark.sync.search`; ``reframe`` says where a
    crop lay in the marked frame, :meth:`wmark.sync.reframe.Reframe.to_dict`). ``hypotheses``: the Bonferroni factor
    the p-value is already multiplied by (:func:`wmark.watermarker.decision.factor`: 2 for the image as received when
    the search could try more, twice the poses it could end on otherwise)."""

    detected: bool
    message: str | None
    hex: str | None
    codeword: str
    p_value: float
    bit_confidence: float
    corrected_symbols: int
    mark_present: bool | None = None
    transform: str = "identity"
    rotation: float = 0.0
    hypotheses: int = 1
    reframe: dict | None = None


@dataclass
class Detection(Report):
    """A detection decision at a chosen false-positive rate.

    ``bit_confidence`` (0 for coin-toss logits, 1 for certain ones) tells an unmarked image, whose
    decoder output sits near 0, from one marked with another message, whose bits are confident but
    do not match; the decision itself rests on the p-value alone.
    """

    detected: bool
    p_value: float
    fpr: float
    method: str
    matching_bits: int | None = None
    bit_confidence: float | None = None
    mark_present: bool | None = None
    transform: str = "identity"
    rotation: float = 0.0
    hypotheses: int = 1
    reframe: dict | None = None


@dataclass
class VideoExtraction(Extraction):
    """A video-level extraction from the per-frame logits combined (:func:`~wmark.stats.combine_frames`), with a
    per-frame timeline.

    ``frames_per_read``: consecutive frames averaged into each read (:data:`~wmark.interface.defaults.FRAME_GROUP`; 1
    with ``per_frame``): each frame takes its run's decision. ``detected_share``: share of read frames whose decision
    was positive; ``segments``: inclusive [first, last] frame ranges of those frames; ``per_frame``: one entry a frame
    when asked for.
    """

    frames: int = 0
    frames_per_read: int = 1
    detected_share: float = 0.0
    segments: list = field(default_factory=list)
    per_frame: list | None = None


@dataclass
class EmbedReport(Report):
    """``path``: the file written, ``input``: the file marked. ``strength``: the one used (set per image by a PSNR
    target); ``flip``/``flip_ratio``: mean FLIP of the stored file and its ratio to a JPEG 75 re-save's, when asked
    for (see :mod:`wmark.perception.flip`). ``verified``: whether the file as written decodes to the embedded
    payload (None when not checked); ``bit_accuracy``: the share of its codeword bits that read back. ``warning``:
    why the mark may be weaker than usual (an image too small for the domain's full grid), or None. The names are
    :mod:`wmark.interface.vocabulary`'s."""

    path: str
    input: str
    model: str
    psnr: float
    ssim: float
    codeword: str
    strength: float
    flip: float | None = None
    flip_ratio: float | None = None
    verified: bool | None = None
    bit_accuracy: float | None = None
    warning: str | None = None


@dataclass
class VideoEmbedReport(Report):
    """``psnr``/``psnr_min``: mean and lowest luma PSNR of the marked frames against the decoded input, before the
    encoder's own loss; ``warning``: why the mark may be weaker than usual (frames too small for the domain's full
    grid), or None. The other fields are :class:`EmbedReport`'s."""

    path: str
    input: str
    model: str
    frames: int
    psnr: float | None
    psnr_min: float | None
    codeword: str
    strength: float
    codec: str
    crf: int
    every: int
    verified: bool | None = None
    bit_accuracy: float | None = None
    warning: str | None = None


class NotVerified(WmarkError):
    """The saved output does not read back the payload that was embedded; the file is kept for inspection."""

    def __init__(self, message: str, report: EmbedReport | VideoEmbedReport) -> None:
        super().__init__(message)
        self.report = report


def posed(found: Extraction | Detection, pose: Pose) -> Extraction | Detection:
    """``found`` with the pose it was read under."""
    found.transform, found.rotation = pose.transform, pose.rotation
    found.reframe = pose.reframe.to_dict() if pose.reframe is not None else None
    return found


def finite_round(value: float) -> float | None:
    """Rounded for reports; None for an infinite PSNR (identical frames), which JSON cannot hold."""
    return round(float(value), 3) if math.isfinite(value) else None
