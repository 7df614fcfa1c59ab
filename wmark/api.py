"""The Python API: ``wmark.load(name)`` returns a :class:`Watermarker`.

A Watermarker embeds, extracts and detects on tensors, PIL images, numpy arrays and files.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from wmark import pipeline, zoo
from wmark.device import resolve_device
from wmark.domain import Domain
from wmark.errors import WmarkError
from wmark.io.atomic import check_folder
from wmark.io.image import from_uint8, read_image, to_uint8, write_image
from wmark.io.media import media_kind
from wmark.io.video import VIDEO_SUFFIXES, check_options, read_yuv, spread_frames, transcode
from wmark.io.yuv import YuvFrames
from wmark.payload import PayloadCode, parse_bits
from wmark.perception.flip import flip_vs_jpeg
from wmark.stats import (DEFAULT_FPR, bit_confidence, check_fpr, combine_frames, logit_magnitude, match_p_value, psnr,
                         ssim)
from wmark.sync import DEFAULT_SEARCH, dihedral, reframe, rotation, template
from wmark.sync.search import Level, Pose
from wmark.sync.search import level as search_level


class _Report:
    """A result that the CLI prints as JSON."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Extraction(_Report):
    """What a blind extraction found. ``bits`` is the raw decoded codeword, before ECC. ``transform``,
    ``rotation`` and ``reframe``: the pose it was read under (see :mod:`wmark.sync.search`; ``reframe`` says where a
    crop lay in the marked frame, :meth:`wmark.sync.reframe.Reframe.to_dict`). ``hypotheses``: the Bonferroni factor
    the p-value is already multiplied by (:meth:`wmark.sync.search.Level.factor`: 2 for the image as received when
    the search could try more, twice the poses it could end on otherwise)."""

    detected: bool
    message: str | None
    hex: str | None
    bits: str
    p_value: float
    bit_confidence: float
    corrected_symbols: int
    mark_present: bool | None = None
    transform: str = "identity"
    rotation: float = 0.0
    hypotheses: int = 1
    reframe: dict | None = None


@dataclass
class Detection(_Report):
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


MIN_PSNR = 25.0
"""Below this PSNR (dB) a result is a damaged picture, not a watermarked one: embedding refuses it unless forced."""
READ_POSES = 1
"""With rotations, how many of the best-aligned poses a search decodes in full after its scans (besides the
identity, read first): each more costs a full decode on an unmarked image."""
VERIFY_FRAMES = 8
"""Frames of a marked video, spread evenly, that are decoded to verify it."""


class NotVerified(WmarkError):
    """The saved output does not read back the payload that was embedded; the file is kept for inspection."""

    def __init__(self, message: str, report: "EmbedReport | VideoEmbedReport") -> None:
        super().__init__(message)
        self.report = report


@dataclass
class EmbedReport(_Report):
    """``strength``: the one used (set per image by a PSNR target); ``flip``/``flip_ratio``: mean FLIP of the
    stored file and its ratio to a JPEG 75 re-save's, when asked for (see :mod:`wmark.perception.flip`).
    ``verified``: whether the file as written decodes to the embedded payload (None when not checked);
    ``readback_bit_accuracy``: the share of its codeword bits that read back. ``warning``: why the mark may be
    weaker than usual (an image too small for the domain's full grid), or None."""

    output: str
    model: str
    psnr: float
    ssim: float
    bits: str
    strength: float
    flip: float | None = None
    flip_ratio: float | None = None
    verified: bool | None = None
    readback_bit_accuracy: float | None = None
    warning: str | None = None


@dataclass
class VideoEmbedReport(_Report):
    """``psnr_y``: mean luma PSNR of the marked frames against the decoded input, before the encoder's own loss;
    ``warning``: why the mark may be weaker than usual (frames too small for the domain's full grid), or None."""

    output: str
    model: str
    frames: int
    psnr_y: float | None
    psnr_y_min: float | None
    bits: str
    strength: float
    codec: str
    crf: int
    every: int
    verified: bool | None = None
    readback_bit_accuracy: float | None = None
    warning: str | None = None


@dataclass
class VideoExtraction(Extraction):
    """A video-level extraction from the per-frame logits combined (:func:`~wmark.stats.combine_frames`), with a
    per-frame timeline.

    ``detected_share``: share of read frames whose own decision was positive; ``segments``: inclusive
    [first, last] frame ranges of those frames; ``per_frame``: one entry a frame when asked for.
    """

    frames: int = 0
    detected_share: float = 0.0
    segments: list = field(default_factory=list)
    per_frame: list | None = None


def _finite_round(value: float) -> float | None:
    """Rounded for reports; None for an infinite PSNR (identical frames), which JSON cannot hold."""
    return round(float(value), 3) if math.isfinite(value) else None


def _segments(indices: list[int], flags: list[bool]) -> list[list[int]]:
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


def _is_video(image) -> bool:
    return isinstance(image, (str, Path)) and media_kind(image) == "video"


def _to_tensor(image) -> tuple[torch.Tensor, Image.Image | str]:
    """(B, 3, H, W) float in [0, 1] from a tensor, PIL image, numpy HWC uint8 array or file path.

    The second value says how to give the result back: "tensor", "numpy", or the PIL image itself
    (an RGBA image gets its own alpha back; other modes come back as RGB).
    """
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise WmarkError(f"expected a (B, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
        return x.float(), "tensor"
    if isinstance(image, Image.Image):
        return _to_tensor(np.asarray(image.convert("RGB")))[0], image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise WmarkError("expected an (H, W, 3) uint8 array")
        return from_uint8(image)[None], "numpy"
    if isinstance(image, (str, Path)):
        return read_image(image).rgb, "tensor"
    raise WmarkError(f"cannot watermark an object of type {type(image).__name__}")


def _from_tensor(x: torch.Tensor, kind: Image.Image | str):
    if isinstance(kind, str) and kind == "tensor":
        return x
    array = to_uint8(x[0])
    if isinstance(kind, str):
        return array
    marked = Image.fromarray(array)
    if kind.mode == "RGBA":
        marked.putalpha(kind.getchannel("A"))
    return marked


class Watermarker:
    """A trained model with its card: embed, extract and detect at any resolution."""

    def __init__(self, card: zoo.Card, device: str | torch.device = "auto") -> None:
        self.card = card
        self.device = resolve_device(device)
        self.model = zoo.load_model(card).to(self.device)
        self.domain = Domain.from_dict(card.data.get("domain"))
        self.video_domain = self._video_domain(card.data.get("video_domain"))

    def _video_domain(self, video: dict | None) -> Domain:
        """The domain video frames are marked in: the card's ``video_domain`` band weights on the image grids."""
        if not video:
            return self.domain
        if self.domain.is_whole_frame or not isinstance(video.get("band_weights"), list):
            raise WmarkError(f"model card {self.card.path / zoo.CARD}: a video_domain needs a tiled domain and a "
                             "list of band_weights")
        return self.domain.reweighted(video["band_weights"])

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def bits(self) -> int:
        return self.domain.codeword_bits(self.model.message_bits)

    def code(self, key: str | None = None) -> PayloadCode:
        """The Reed-Solomon payload code for this model's bit count and ``key``."""
        return PayloadCode(self.bits, key=key)

    def codeword(self, message: str | None = None, *, bits: str | None = None, hex: str | None = None,
                 key: str | None = None) -> torch.Tensor:
        """The (L,) 0/1 codeword: raw ``bits`` as given, or ``message``/``hex`` coded with ECC and key."""
        given = [v for v in (message, bits, hex) if v is not None]
        if len(given) != 1:
            raise WmarkError("give exactly one of a message, raw bits or hex")
        if bits is not None:
            return parse_bits(bits, self.bits)
        code = self.code(key)
        return code.encode_text(message) if message is not None else code.encode_hex(hex)

    def _strength(self, strength: float | None) -> float:
        s = self.card.strength if strength is None else strength
        if not math.isfinite(s) or s <= 0:
            raise WmarkError(f"strength must be a positive number, got {s}")
        return s

    def _message(self, codeword: torch.Tensor, batch: int) -> torch.Tensor:
        return (codeword.to(self.device).float() * 2 - 1).expand(batch, -1)

    def embed_tensor(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None = None,
                     psnr: float | None = None, video: bool = False) -> torch.Tensor:
        """Mark a float batch (B, 3, H, W); returns the marked batch, clamped, not rounded.

        ``psnr`` sets each image's strength so that the residual alone gives that PSNR (before clamping
        and rounding, which move it by a few hundredths of a dB); it replaces ``strength``. ``video`` marks
        the batch as video frames, in the card's ``video_domain`` where it has one.
        """
        return self._embed(x, codeword, strength, psnr, self.video_domain if video else self.domain)[0]

    def _embed(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None,
               psnr: float | None, domain: Domain | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(marked batch, the strength used for each image), in ``domain`` (the image one by default).

        Where the card has a ``psnr_floor`` (dB), its strength is lowered image by image so that no image's
        residual alone takes it under the floor; an explicit ``strength`` or ``psnr`` is used as given.
        (Video files, marked through :meth:`embed_video`, keep one strength for every frame.)"""
        x = x.to(self.device)
        residual = pipeline.residual(self.model, x, self._message(codeword, x.shape[0]), domain or self.domain)
        rms = residual.flatten(1).square().mean(1).sqrt().clamp(min=1e-12)
        floor = self.card.data.get("psnr_floor")
        if psnr is None:
            s = torch.full((x.shape[0],), self._strength(strength), device=self.device)
            if strength is None and floor is not None:
                s = torch.minimum(s, 10 ** (-floor / 20) / rms)
        elif strength is not None:
            raise WmarkError("give either a strength or a PSNR target, not both")
        elif not math.isfinite(psnr) or psnr <= 0:
            raise WmarkError(f"a PSNR target must be a positive number of dB, got {psnr}")
        else:
            s = 10 ** (-psnr / 20) / rms
        return torch.addcmul(x, s.view(-1, 1, 1, 1), residual).clamp_(0, 1).cpu(), s.cpu()

    def embed(self, image, message: str | None = None, *, bits: str | None = None, hex: str | None = None,
              key: str | None = None, strength: float | None = None, psnr: float | None = None):
        """Mark a tensor, PIL image or uint8 array; returns the same kind (uint8 kinds are rounded)."""
        x, kind = _to_tensor(image)
        codeword = self.codeword(message, bits=bits, hex=hex, key=key)
        return _from_tensor(self.embed_tensor(x, codeword, strength, psnr), kind)

    def embed_file(self, source: str | Path, output: str | Path, message: str | None = None, *,
                   bits: str | None = None, hex: str | None = None, key: str | None = None,
                   strength: float | None = None, quality: int | None = None, force: bool = False,
                   psnr_target: float | None = None, flip: bool = False, verify: bool = True,
                   **video_options) -> EmbedReport | VideoEmbedReport:
        """Mark an image or video file into ``output`` (atomically; the input is never modified).

        Refused unless ``force``: overwriting the input, an input that already carries this model's mark
        under this key, and a result under :data:`MIN_PSNR`. For images, PSNR and SSIM (and FLIP, with
        ``flip``) are measured on the file as stored (after rounding and any lossy coding); ``psnr_target``
        sets the image's strength for that PSNR. Videos go to :meth:`embed_video` with ``video_options``.
        With ``verify`` the written file is decoded again; :class:`NotVerified` is raised (the file kept)
        when it does not give the payload back.
        """
        source, output = Path(source), Path(output)
        if output.exists() and output.resolve() == source.resolve() and not force:
            raise WmarkError(f"refusing to overwrite the input {source}; give --force to do so")
        check_folder(output)
        codeword = self.codeword(message, bits=bits, hex=hex, key=key)
        video = media_kind(source) == "video"
        if video and (psnr_target is not None or flip):
            raise WmarkError("--psnr and --flip apply to images; a video takes --strength")
        picture = None if video else read_image(source)
        if not force:
            self._refuse_marked(source, picture.rgb if picture else None, key)
        stored = None  # a video's frames are read back by _verify
        if video:
            report = self.embed_video(source, output, codeword, strength, floor=None if force else MIN_PSNR,
                                      **video_options)
        else:
            report, stored = self._embed_image(picture, output, codeword, strength, psnr_target, quality, flip, force)
        if verify:
            self._verify(report, output, codeword, key, raw=bits is not None, stored=stored)
        return report

    def _embed_image(self, picture, output: Path, codeword: torch.Tensor, strength: float | None,
                     psnr_target: float | None, quality: int | None, flip: bool,
                     force: bool) -> tuple[EmbedReport, torch.Tensor]:
        """The report on the file written, and its pixels as read back."""
        marked, used = self._embed(picture.rgb, codeword, strength, psnr_target)
        quality_db = float(psnr(from_uint8(to_uint8(marked[0]))[None], picture.rgb))
        if quality_db < MIN_PSNR and not force:
            raise WmarkError(f"the marked image would have a PSNR of {quality_db:.1f} dB, under the {MIN_PSNR:g} dB "
                             "floor; lower --strength or give --force")
        write_image(picture, marked, output, quality=quality)
        stored = read_image(output).rgb
        visibility = flip_vs_jpeg(to_uint8(picture.rgb[0]), to_uint8(stored[0])) if flip else {}
        report = EmbedReport(
            output=str(output),
            model=self.name,
            psnr=round(float(psnr(stored, picture.rgb)), 3),
            ssim=round(float(ssim(stored, picture.rgb)), 5),
            bits="".join(map(str, codeword.tolist())),
            strength=round(float(used[0]), 5),
            flip=visibility.get("flip"),
            flip_ratio=visibility.get("flip_ratio"),
            warning=self._size_warning(*stored.shape[-2:]),
        )
        return report, stored

    def _size_warning(self, height: int, width: int, what: str = "image") -> str | None:
        if self.domain.is_whole_frame or not self.domain.cut_short(height, width, self.model.size):
            return None
        return (f"a {width}x{height} {what} is too small for {self.name}'s full tile grid, so its mark reads less "
                f"after compression; a whole-frame model such as mbrs-64 holds up better on small {what}s")

    def _file_logits(self, path: Path, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of an image (``pixels`` when already read) or the combined logits of a few frames of a video."""
        if pixels is not None:
            return self.logits(pixels)
        return combine_frames(self.video_logits(path, frames=VERIFY_FRAMES)[1])

    def _refuse_marked(self, source: Path, pixels: torch.Tensor | None, key: str | None) -> None:
        """A second mark of the same model garbles both, whatever the keys: refuse one under this key (decoded) or
        under another (:meth:`mark_present`)."""
        found = self.extract_logits(self._file_logits(source, pixels), key=key)
        if found.detected:
            raise WmarkError(f"{source} already carries a {self.name} mark under this key (message "
                             f"{found.message!r}); a second mark would garble both (--force marks it anyway)")
        if found.mark_present:
            raise WmarkError(f"{source} already carries a {self.name} mark under another key; a second mark would "
                             "garble both (--force marks it anyway)")

    def _verify(self, report: EmbedReport | VideoEmbedReport, output: Path, codeword: torch.Tensor,
                key: str | None, raw: bool, stored: torch.Tensor | None) -> None:
        """Decode the written file (an image's ``stored`` pixels, as read back); raw bits verify by a binomial
        match, coded payloads by decoding exactly."""
        logits = self._file_logits(output, stored)
        decoded = (logits > 0).to(torch.uint8)
        report.readback_bit_accuracy = round(float((decoded == codeword).float().mean()), 4)
        if raw:
            report.verified = bool(match_p_value(decoded, codeword) <= DEFAULT_FPR)
        else:
            found = self.extract_logits(logits, key=key)
            report.verified = bool(found.detected and self.codeword(hex=found.hex, key=key).equal(codeword))
        if not report.verified:
            advice = ("it is too small for this model's tile grid: try -m mbrs-64 (3 bytes of text at most)"
                      if report.warning else "raise --strength or try another model (-m)")
            raise NotVerified(f"{output} was written but does not read back the payload ({report.readback_bit_accuracy:.0%} "
                              f"of bits); {advice}, or --no-verify to skip", report)

    def embed_video(self, source: str | Path, output: str | Path, codeword: torch.Tensor,
                    strength: float | None = None, *, codec: str = "h264", crf: int = 18, preset: str = "medium",
                    batch: int = 16, every: int = 1, progress=None, floor: float | None = None) -> VideoEmbedReport:
        """Mark every frame of a video and encode it; audio and subtitles are copied untouched.

        With ``every`` = K > 1 the residual is computed on every K-th frame and reused for the
        frames up to the next one (temporal propagation, as in VideoSeal): K times fewer model
        calls, at some cost in quality on moving content. A frame under ``floor`` dB (luma PSNR)
        stops the job, and no output is left.
        """
        output = Path(output)
        if output.suffix.lower() not in VIDEO_SUFFIXES:
            raise WmarkError(f"a marked video needs a video file name ({', '.join(sorted(VIDEO_SUFFIXES))}); got {output}")
        check_options(codec, crf, preset, batch, every)
        s = self._strength(strength)
        psnrs: list[float] = []
        state = {"frame": 0, "residual": None}

        def mark(frames: YuvFrames) -> YuvFrames:
            frames = frames.to(self.device)
            first = state["frame"]
            keys = [i for i in range(len(frames)) if (first + i) % every == 0]
            if keys:
                pipeline.check_size(frames.y.unsqueeze(1))
                subset = frames if len(keys) == len(frames) else frames.take(keys)
                fresh = self._frame_residual(subset, self._message(codeword, len(keys)))
            chosen = []
            for i in range(len(frames)):
                if i in keys:
                    state["residual"] = fresh[keys.index(i)]
                chosen.append(state["residual"])
            residual = s * torch.stack(chosen)
            marked = frames.add_luma(residual) if residual.shape[1] == 1 else frames.add_rgb(residual)
            psnrs.extend(marked.luma_psnr(frames).tolist())
            if floor is not None and min(psnrs) < floor:
                raise WmarkError(f"a marked frame would have a luma PSNR of {min(psnrs):.1f} dB, under the {floor:g} dB "
                                 "floor; lower --strength or give --force")
            state["frame"] += len(frames)
            return marked

        info = transcode(source, output, mark, codec=codec, crf=crf, preset=preset, batch=batch, progress=progress)
        return VideoEmbedReport(
            output=str(output), model=self.name, frames=info.frames,
            psnr_y=_finite_round(np.mean(psnrs)), psnr_y_min=_finite_round(np.min(psnrs)),
            bits="".join(map(str, codeword.tolist())), strength=s, codec=codec, crf=crf, every=every,
            warning=self._size_warning(info.height, info.width, "video"),
        )

    @torch.no_grad()
    def _frame_residual(self, frames: YuvFrames, message: torch.Tensor) -> torch.Tensor:
        """The residual of video frames: at native size for the whole-frame domain (resized in the planes,
        which is cheap), else at full resolution in the video domain (one plane for a luma domain; a domain of
        patterns reads only the frames' luma, for the JND)."""
        if self.video_domain.is_whole_frame:
            return self.model.residual(frames.rgb(self.model.size), message)
        frames_read = frames.luma() if self.video_domain.patterns else frames.rgb()
        return self.video_domain.planes(self.model, frames_read, message)

    def frame_logits(self, x: torch.Tensor, pose: Pose = Pose()) -> torch.Tensor:
        """Decoder logits (B, L) for a float batch (B, 3, H, W) at any resolution, ``pose`` undone first."""
        x = dihedral.UNDO[pose.transform](x.to(self.device))
        if pose.reframe is not None:
            frames, coverage = reframe.canvas(x, pose.reframe, self.model.size)
            return pipeline.decode(self.model, frames, self.domain, coverage=coverage).float().cpu()
        return pipeline.decode(self.model, x, self.domain, pose.rotation).float().cpu()

    def yuv_logits(self, frames: YuvFrames, pose: Pose = Pose()) -> torch.Tensor:
        """Decoder logits (B, L) for decoded 4:2:0 video frames (resized to the native size in their planes
        for the whole-frame domain), ``pose`` (:class:`wmark.sync.search.Pose`) undone first."""
        pipeline.check_size(frames.y.unsqueeze(1))
        frames, undo = frames.to(self.device), dihedral.UNDO[pose.transform]
        if pose.reframe is not None:
            return self.frame_logits(frames.rgb(), pose)
        if not self.domain.is_whole_frame or pose.rotation:
            return pipeline.decode(self.model, undo(frames.rgb()), self.domain, pose.rotation).float().cpu()
        with torch.no_grad():  # a flip or quarter turn commutes with squashing the frame to the square native size
            return self.model.decode(undo(frames.rgb(self.model.size))).float().cpu()

    def video_logits(self, path: str | Path, frames: int | None = None, batch: int = 16,
                     pose: Pose = Pose()) -> tuple[list[int], torch.Tensor]:
        """(frame indices, logits (N, L)) for all frames of a video, or ``frames`` of them spread evenly."""
        select = spread_frames(path, frames)
        indices, logits = [], []
        for batch_indices, frames in read_yuv(path, batch=batch, select=select):
            indices += batch_indices
            logits.append(self.yuv_logits(frames, pose))
        if not logits:
            raise WmarkError(f"{path}: no frame could be decoded")
        return indices, torch.cat(logits)

    def _video_pose(self, path: str | Path, level: Level, detects: Callable[[torch.Tensor, int], bool]) -> Pose:
        """The first pose of ``level`` (the identity, then :meth:`_plan`'s) under which the combined logits of a few
        frames spread over the video are detected (``detects(logits, factor)``, the frames read once), else the
        identity."""
        if level.hypotheses == 1:
            return Pose()
        sample = [frames.to(self.device) for _, frames in
                  read_yuv(path, batch=VERIFY_FRAMES, select=spread_frames(path, VERIFY_FRAMES))]
        if not sample:
            return Pose()
        rgb = torch.cat([frames.rgb() for frames in sample])
        for pose in chain([Pose()], self._plan(rgb, level)[1]):
            if detects(combine_frames(torch.cat([self.yuv_logits(frames, pose) for frames in sample])),
                       self.video_factor(level, pose)):
                return pose
        return Pose()

    def extract_video(self, path: str | Path, key: str | None = None, fpr: float = DEFAULT_FPR,
                      frames: int | None = None, batch: int = 16, per_frame: bool = False,
                      search: str = DEFAULT_SEARCH) -> VideoExtraction:
        """Blind extraction from a video: one message from the combined frame logits, plus a timeline. With ``search``
        the pose is found on a few frames and undone on all of them."""
        pose = self.video_pose(path, search, key, fpr)
        indices, logits = self.video_logits(path, frames, batch, pose)
        found = self.extract_frames(indices, logits, key=key, fpr=fpr, per_frame=per_frame,
                                    hypotheses=self.video_factor(search_level(search), pose))
        return posed(found, pose)

    def video_factor(self, level: Level, pose: Pose) -> int:
        """The p-value's factor for a video read under ``pose`` found by ``level``
        (:meth:`~wmark.sync.search.Level.factor`): every pose the level could end on for this model, its bound (a
        video's pose is found on a few frames, not planned on the one read); a model without a template never
        places a crop, so its count leaves the placements out."""
        return level.factor(pose, (level if self.domain.template else replace(level, reframes=False)).hypotheses)

    def video_pose(self, path: str | Path, search: str = "fast", key: str | None = None,
                   fpr: float = DEFAULT_FPR) -> Pose:
        """The pose of ``search`` under which a few frames of the video decode (blind), else the identity."""
        return self._video_pose(path, search_level(search),
                                lambda logits, n: self.extract_logits(logits, key, fpr, hypotheses=n).detected)

    def extract_frames(self, indices: list[int], logits: torch.Tensor, key: str | None = None,
                       fpr: float = DEFAULT_FPR, per_frame: bool = False, hypotheses: int = 1) -> VideoExtraction:
        """A video's extraction from its frames' logits (N, L): their combination decides, each frame gives the
        timeline.

        When the video's message is found, a frame counts as marked when its bits match that codeword
        (binomial test at ``fpr``): cheap, and it shows where this message is. Otherwise each frame is
        decoded on its own (several messages spliced together show up that way).
        """
        found = self.extract_logits(combine_frames(logits), key=key, fpr=fpr, hypotheses=hypotheses)
        if found.detected:
            codeword = self.codeword(hex=found.hex, key=key)
            p_values = match_p_value(logits > 0, codeword).tolist()
            confidence = bit_confidence(logits).tolist()
            each = [Extraction(p <= fpr, found.message if p <= fpr else None, found.hex if p <= fpr else None,
                               "", p, round(c, 4), 0) for p, c in zip(p_values, confidence)]
        else:
            each = [self.extract_logits(row, key=key, fpr=fpr, hypotheses=hypotheses) for row in logits]
        flags = [e.detected for e in each]
        timeline = None
        if per_frame:
            timeline = [{"frame": i, "detected": e.detected, "p_value": e.p_value,
                         "bit_confidence": e.bit_confidence, "message": e.message} for i, e in zip(indices, each)]
        return VideoExtraction(**asdict(found), frames=len(indices), detected_share=round(sum(flags) / len(flags), 4),
                               segments=_segments(indices, flags), per_frame=timeline)

    def logits(self, image) -> torch.Tensor:
        """Decoder logits (L,) for one image (tensor, PIL image, array or path); a video's combined logits."""
        if _is_video(image):
            return combine_frames(self.video_logits(image)[1])
        return self._image_logits(self._one_image(image))

    def _one_image(self, image) -> torch.Tensor:
        x, _ = _to_tensor(image)
        if x.shape[0] != 1:
            raise WmarkError(f"extract and detect take one image at a time, got a batch of {x.shape[0]}")
        return x

    def _image_logits(self, x: torch.Tensor, pose: Pose = Pose()) -> torch.Tensor:
        return self.frame_logits(x, pose)[0]

    def _plan(self, x: torch.Tensor, level: Level) -> tuple[int, Iterator[Pose]]:
        """(count, poses): the poses of ``level`` to read frames ``x`` (B, 3, H, W) under after the identity
        (:meth:`_poses`), and how many it counts for the p-value (:meth:`~wmark.sync.search.Level.factor`). A level
        with reframes, for a model with a template, first looks for the template in the frames' mean and its mirror
        image (:func:`wmark.sync.template.find`) and counts the placements :func:`wmark.sync.reframe.search` will
        score for what it finds (known before any decoding, so the Bonferroni bound holds), plus the rotation scan's
        poses; other levels count ``level.hypotheses``."""
        if not (level.reframes and self.domain.template):
            return level.hypotheses, self._poses(x, level)
        frame = x.mean(0, keepdim=True)
        fits = {}
        plausible = reframe.plausible(self.domain, self.model.size, *frame.shape[-2:])
        if found := template.find(frame, plausible):  # the mirror's peaks are as strong: one look decides
            for name in level.transforms:
                seen = found if name == "identity" else template.find(dihedral.UNDO[name](frame), plausible)
                if seen:
                    fits[name] = seen
        placements = sum(reframe.hypotheses(self.domain, self.model.size, *frame.shape[-2:], fit)
                         for seen in fits.values() for fit in seen)
        return len(level.transforms) * rotation.ANGLES + placements, self._poses(x, level, fits)

    def _poses(self, x: torch.Tensor, level: Level,
               fits: dict[str, list[template.Fit]] | None = None) -> Iterator[Pose]:
        """The poses of ``level`` to read frames ``x`` (B, 3, H, W) under once the identity has failed, in order: for
        each flip whose template ``fits`` holds (see :meth:`_plan`), the placements :func:`wmark.sync.reframe.search`
        scores best; then each flip or quarter turn; with rotations, each of those is scanned for its best angle by
        the coarsest band (:func:`wmark.sync.rotation.scan`) and only the :data:`READ_POSES` best-aligned are read,
        their angle refined on the finest band (:func:`wmark.sync.rotation.refine`). Several frames (a video's) are
        scanned as their mean."""
        x = x.mean(0, keepdim=True)  # a video's frames carry one mark: their mean keeps it and blurs what moves
        for name, seen in (fits or {}).items():
            for fit in seen:
                for _, placed in reframe.search(self.domain, self.model, dihedral.UNDO[name](x), fit):
                    yield Pose(name, round(placed.degrees(), 3), placed)
        if not level.rotations:
            yield from (Pose(name) for name in level.transforms if name != "identity")
            return
        scanned = sorted(((*rotation.scan(self.domain.aligner(self.model, dihedral.UNDO[name](x))), name)
                          for name in level.transforms), key=lambda found: -found[1])
        for angle, _, name in scanned[:READ_POSES]:
            fine = self.domain.aligner(self.model, dihedral.UNDO[name](x), finest=True)
            pose = Pose(name, rotation.refine(angle, fine))
            if pose != Pose():
                yield pose

    def _searched(self, image, search: str, read: Callable[[torch.Tensor, int], _Report]) -> _Report:
        """``read(logits, factor)`` as received, then under each pose of ``search`` in turn (:meth:`_plan`), undone
        on the image: the first report that detects, else the one as received. ``factor`` is the p-value's
        Bonferroni factor (:meth:`~wmark.sync.search.Level.factor`): for an image's poses, counted by its plan;
        for a video's, every pose the level could end on."""
        level = search_level(search)
        if _is_video(image):
            pose = self._video_pose(image, level, lambda logits, n: read(logits, n).detected)
            return posed(read(combine_frames(self.video_logits(image, pose=pose)[1]), self.video_factor(level, pose)),
                         pose)
        x = self._one_image(image).to(self.device)
        received = posed(read(self._image_logits(x), level.factor(Pose())), Pose())
        if received.detected or level.hypotheses == 1:
            return received
        count, poses = self._plan(x, level)
        for pose in poses:
            found = posed(read(self._image_logits(x, pose), level.factor(pose, count)), pose)
            if found.detected:
                return found
        return received

    def extract(self, image, key: str | None = None, fpr: float = DEFAULT_FPR,
                search: str = DEFAULT_SEARCH) -> Extraction:
        """Blind extraction: decode, correct errors, and decide at false-positive rate ``fpr``; ``search``
        (:data:`wmark.sync.search.LEVELS`) also tries flips, quarter turns and small rotations."""
        if _is_video(image):
            return self.extract_video(image, key=key, fpr=fpr, search=search)
        return self._searched(image, search, lambda logits, n: self.extract_logits(logits, key, fpr, hypotheses=n))

    def mark_present(self, logits: torch.Tensor) -> bool | None:
        """Whether the decoder commits as strongly as it does on marked images, whatever the message or key:
        :func:`~wmark.stats.logit_magnitude` at or above the card's calibrated ``presence`` threshold
        (``benchmarks/presence.py``), whose false-positive rate the card records. None without a calibration.
        Reports set ``mark_present`` also when a message is detected."""
        presence = self.card.data.get("presence")
        return None if presence is None else logit_magnitude(logits) >= presence["threshold"]

    def extract_logits(self, logits: torch.Tensor, key: str | None = None, fpr: float = DEFAULT_FPR,
                       hypotheses: int = 1) -> Extraction:
        """Decode logits; the p-value is multiplied by the number of ``hypotheses`` a search tried for them."""
        check_fpr(fpr)
        result = self.code(key).decode(logits)
        p_value = min(1.0, result.p_value * hypotheses)
        detected = bool(result.valid and p_value <= fpr)
        return Extraction(
            detected=detected,
            message=result.text if detected else None,
            hex=result.hex if detected else None,
            bits=result.bits,
            p_value=p_value,
            bit_confidence=round(float(bit_confidence(logits.detach())), 4),
            corrected_symbols=result.corrected_symbols,
            mark_present=True if detected else self.mark_present(logits),
            hypotheses=hypotheses,
        )

    def detect(self, image, key: str | None = None, expect: str | None = None, fpr: float = DEFAULT_FPR,
               search: str = DEFAULT_SEARCH) -> Detection:
        """Is this model's mark present? Against an expected message (a binomial test on all bits, overruled when
        the ECC decodes another message) or blind (ECC check); ``search`` as for :meth:`extract`."""
        check_fpr(fpr)
        return self._searched(image, search, lambda logits, n: self.detect_logits(logits, key, expect, fpr, n))

    def detect_logits(self, logits: torch.Tensor, key: str | None = None, expect: str | None = None,
                      fpr: float = DEFAULT_FPR, hypotheses: int = 1) -> Detection:
        """:meth:`detect` on decoder logits, the p-value multiplied by the number of ``hypotheses`` searched."""
        if expect is None:
            found = self.extract_logits(logits, key=key, fpr=fpr, hypotheses=hypotheses)
            return Detection(found.detected, found.p_value, fpr, "blind", bit_confidence=found.bit_confidence,
                             mark_present=found.mark_present, hypotheses=hypotheses)
        expected = self.codeword(expect, key=key)
        decoded = (logits > 0).to(torch.uint8)
        p_value = min(1.0, float(match_p_value(decoded, expected)) * hypotheses)
        matches = int((decoded == expected).sum())
        confidence = round(float(bit_confidence(logits)), 4)
        found = self.code(key).decode(logits)
        if found.valid and found.data != expect.encode("utf-8").rstrip(b"\0"):
            # The codes of two messages share every symbol where their zero padding agrees, so the binomial
            # test alone would accept a short message in an image marked with another one; the ECC says which.
            p_value = 1.0
        present = True if p_value <= fpr else self.mark_present(logits)
        return Detection(p_value <= fpr, p_value, fpr, "expect", matches, confidence, present, hypotheses=hypotheses)


def posed(found: _Report, pose: Pose) -> _Report:
    """``found`` (an Extraction or Detection) with the pose it was read under."""
    found.transform, found.rotation = pose.transform, pose.rotation
    found.reframe = pose.reframe.to_dict() if pose.reframe is not None else None
    return found


def load(name_or_path: str | Path | None = None, device: str | torch.device = "auto",
         medium: str = "image") -> Watermarker:
    """Load a checkpoint by name or folder path; None is the default for ``medium`` (image or video)."""
    return Watermarker(zoo.find_card(name_or_path, medium), device=device)
