"""The Python API: ``wmark.load(name)`` returns a :class:`Watermarker`.

A Watermarker embeds, extracts and detects on tensors, PIL images, numpy arrays and files. It is a facade: each
job lives in its own module of :mod:`wmark.watermarker`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from wmark import zoo
from wmark.device import resolve_device
from wmark.domain import Domain
from wmark.errors import WmarkError
from wmark.interface.defaults import DEFAULT_FPR, FRAME_BATCH, FRAME_GROUP
from wmark.models.inference import for_inference
from wmark.payload import PayloadCode
from wmark.stats import combine_frames
from wmark.sync import DEFAULT_SEARCH
from wmark.sync.search import Level, Pose
from wmark.sync.search import level as search_level
from wmark.watermarker import video
from wmark.watermarker.decision import Decision, video_factor
from wmark.watermarker.embedder import Embedder
from wmark.watermarker.files import MIN_PSNR, FileMarker
from wmark.watermarker.inputs import from_tensor, is_video, one_image, to_tensor
from wmark.watermarker.reader import Reader
from wmark.watermarker.reports import (Detection, EmbedReport, Extraction, NotVerified, VideoEmbedReport,
                                       VideoExtraction, posed)
from wmark.watermarker.search import first_detected, image_candidates

__all__ = ["Detection", "EmbedReport", "Extraction", "MIN_PSNR", "NotVerified", "VideoEmbedReport",
           "VideoExtraction", "Watermarker", "load", "posed"]


class Watermarker:
    """A trained model with its card: embed, extract and detect at any resolution."""

    def __init__(self, card: zoo.Card, device: str | torch.device = "auto") -> None:
        self.card = card
        self.device = resolve_device(device)
        self.model = for_inference(zoo.load_model(card), self.device)
        self.domain = Domain.from_dict(card.domain)
        self.video_domain = self._video_domain(card.video_domain)
        layout = PayloadCode.from_layout(card.payload)
        if layout.n_bits != self.domain.codeword_bits(self.model.message_bits):
            raise WmarkError(f"model card {card.path / zoo.CARD}: its payload block has {layout.n_bits} bits, its "
                             f"model and domain {self.domain.codeword_bits(self.model.message_bits)}")
        self.decision = Decision(layout, card.presence_threshold)
        self.reader = Reader(self.model, self.domain, self.device, self.video_domain)
        self.embedder = Embedder(self.model, self.domain, self.video_domain, card.strength, card.psnr_floor,
                                 self.device)
        self.files = FileMarker(self.name, self.embedder, self.reader, self.decision)

    def _video_domain(self, video_card: dict | None) -> Domain:
        """The domain video frames are marked in: the card's ``video_domain`` band weights on the image grids."""
        if not video_card:
            return self.domain
        if self.domain.is_whole_frame or not isinstance(video_card.get("band_weights"), list):
            raise WmarkError(f"model card {self.card.path / zoo.CARD}: a video_domain needs a tiled domain and a "
                             "list of band_weights")
        return self.domain.reweighted(video_card["band_weights"])

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def bits(self) -> int:
        return self.decision.bits

    def code(self, key: str | None = None) -> PayloadCode:
        """The Reed-Solomon payload code of this model's card, under ``key``."""
        return self.decision.code(key)

    def codeword(self, message: str | None = None, *, codeword: str | None = None, hex: str | None = None,
                 key: str | None = None) -> torch.Tensor:
        """The (L,) 0/1 codeword: a raw ``codeword`` string as given, or ``message``/``hex`` coded with ECC and key."""
        return self.decision.codeword(message, codeword=codeword, hex=hex, key=key)

    def embed_tensor(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None = None,
                     psnr: float | None = None, video: bool = False) -> torch.Tensor:
        """Mark a float batch (B, 3, H, W); returns it clamped, not rounded (:meth:`Embedder.embed`)."""
        return self.embedder.embed(x, codeword, strength, psnr, video)[0]

    def embed(self, image, message: str | None = None, *, codeword: str | None = None, hex: str | None = None,
              key: str | None = None, strength: float | None = None, psnr: float | None = None):
        """Mark a tensor, PIL image or uint8 array; returns the same kind (uint8 kinds are rounded)."""
        x, kind = to_tensor(image)
        return from_tensor(self.embed_tensor(x, self.codeword(message, codeword=codeword, hex=hex, key=key),
                                             strength, psnr), kind)

    def embed_file(self, source: str | Path, output: str | Path, message: str | None = None, *,
                   codeword: str | None = None, hex: str | None = None, key: str | None = None,
                   strength: float | None = None, quality: int | None = None, force: bool = False,
                   psnr_target: float | None = None, flip: bool = False, verify: bool = True,
                   **video_options) -> EmbedReport | VideoEmbedReport:
        """Mark an image or video file into ``output`` atomically, checked (:class:`FileMarker`)."""
        word = self.codeword(message, codeword=codeword, hex=hex, key=key)
        return self.files.embed(Path(source), Path(output), word, key=key, raw=codeword is not None,
                                strength=strength, quality=quality, force=force, psnr_target=psnr_target,
                                flip=flip, verify=verify, **video_options)

    def embed_video(self, source: str | Path, output: str | Path, codeword: torch.Tensor,
                    strength: float | None = None, **options) -> VideoEmbedReport:
        """Mark every frame of a video and encode it (:func:`wmark.watermarker.video.embed_video`)."""
        return video.embed_video(self.embedder, self.name, source, output, codeword, strength, **options)

    def frame_logits(self, x: torch.Tensor, pose: Pose = Pose(), video: bool = False) -> torch.Tensor:
        """Decoder logits (B, L) for a float batch (B, 3, H, W) at any resolution, ``pose`` undone first; ``video``
        frames are read in the video domain."""
        return self.reader.frames(x, pose, video)

    def yuv_logits(self, frames, pose: Pose = Pose()) -> torch.Tensor:
        """Decoder logits (B, L) for decoded 4:2:0 video frames, ``pose`` undone first."""
        return self.reader.yuv(frames, pose)

    def video_logits(self, path: str | Path, frames: int | None = None, batch: int = FRAME_BATCH,
                     pose: Pose = Pose(), group: int = 1) -> tuple[list[int], torch.Tensor]:
        """(frame indices, logits (N, L)) for all frames of a video, or ``frames`` of them spread evenly; with
        ``group`` > 1 each run of that many frames is read as its mean, and its frames share its logits."""
        indices, [logits] = video.read([self.reader], path, [pose], frames, batch, group=group)
        return indices, logits

    def logits(self, image) -> torch.Tensor:
        """Decoder logits (L,) for one image (tensor, PIL image, array or path); a video's combined logits."""
        if is_video(image):
            return combine_frames(self.video_logits(image)[1])
        return self.reader.image(one_image(image))

    def video_factor(self, level: Level, pose: Pose) -> int:
        """The p-value's factor for a video read under ``pose`` (:func:`wmark.watermarker.decision.video_factor`)."""
        return video_factor(level, pose, bool(self.domain.template))

    def video_pose(self, path: str | Path, search: str = "fast", key: str | None = None,
                   fpr: float = DEFAULT_FPR) -> Pose:
        """The pose of ``search`` under which a few frames of the video decode (blind), else the identity."""
        return video.find_pose(self.reader, path, search_level(search), bool(self.domain.template),
                               lambda logits, n: self.decision.extract(logits, key, fpr, hypotheses=n).detected)

    def _searched(self, image, search: str, decide) -> Extraction | Detection:
        """``decide(logits, factor)`` under the poses of ``search`` in turn: the first report that detects."""
        level = search_level(search)
        if is_video(image):
            pose = video.find_pose(self.reader, image, level, bool(self.domain.template),
                                   lambda logits, n: decide(logits, n).detected)
            return posed(decide(combine_frames(self.video_logits(image, pose=pose)[1]), self.video_factor(level, pose)),
                         pose)
        x = one_image(image).to(self.device)
        return first_detected(image_candidates(self.reader, x, level), self.reader.image_reads(x, level.hypotheses > 1),
                              decide,
                              self.reader.by_look(x))

    def extract(self, image, key: str | None = None, fpr: float = DEFAULT_FPR,
                search: str = DEFAULT_SEARCH) -> Extraction:
        """Blind extraction at false-positive rate ``fpr``; ``search`` (:data:`wmark.sync.search.LEVELS`) also tries
        flips, quarter turns, small rotations and crops."""
        if is_video(image):
            return self.extract_video(image, key=key, fpr=fpr, search=search)
        return self._searched(image, search, lambda logits, n: self.decision.extract(logits, key, fpr, n))

    def extract_video(self, path: str | Path, key: str | None = None, fpr: float = DEFAULT_FPR,
                      frames: int | None = None, batch: int = FRAME_BATCH, per_frame: bool = False,
                      search: str = DEFAULT_SEARCH) -> VideoExtraction:
        """One message from a video's combined frame logits, plus a timeline; the pose is found on a few frames.
        Runs of :data:`~wmark.interface.defaults.FRAME_GROUP` consecutive frames are read as their mean, unless
        ``per_frame`` (every frame read alone) or ``frames`` (frames spread apart) is given."""
        pose = self.video_pose(path, search, key, fpr)
        group = 1 if per_frame or frames is not None else FRAME_GROUP
        indices, logits = self.video_logits(path, frames, batch, pose, group)
        found = self.extract_frames(indices, logits, key=key, fpr=fpr, per_frame=per_frame,
                                    hypotheses=self.video_factor(search_level(search), pose), frames_per_read=group)
        return posed(found, pose)

    def extract_frames(self, indices: list[int], logits: torch.Tensor, key: str | None = None,
                       fpr: float = DEFAULT_FPR, per_frame: bool = False, hypotheses: int = 1,
                       frames_per_read: int = 1) -> VideoExtraction:
        """A video's extraction from its frames' logits (N, L) (:func:`wmark.watermarker.video.timeline`)."""
        return video.timeline(self.decision, indices, logits, key, fpr, per_frame, hypotheses, frames_per_read)

    def extract_logits(self, logits: torch.Tensor, key: str | None = None, fpr: float = DEFAULT_FPR,
                       hypotheses: int = 1) -> Extraction:
        """Decode logits; the p-value carries the ``hypotheses`` a search tried (:meth:`Decision.extract`)."""
        return self.decision.extract(logits, key, fpr, hypotheses)

    def detect(self, image, key: str | None = None, expect: str | None = None, fpr: float = DEFAULT_FPR,
               search: str = DEFAULT_SEARCH) -> Detection:
        """Is this model's mark present? Against an expected message or blind; ``search`` as for :meth:`extract`."""
        return self._searched(image, search, lambda logits, n: self.decision.detect(logits, key, expect, fpr, n))

    def detect_logits(self, logits: torch.Tensor, key: str | None = None, expect: str | None = None,
                      fpr: float = DEFAULT_FPR, hypotheses: int = 1) -> Detection:
        """:meth:`detect` on decoder logits (:meth:`Decision.detect`)."""
        return self.decision.detect(logits, key, expect, fpr, hypotheses)

    def mark_present(self, logits: torch.Tensor) -> bool | None:
        """Whether the decoder commits as strongly as on marked images (:meth:`Decision.mark_present`)."""
        return self.decision.mark_present(logits)


def load(name_or_path: str | Path | None = None, device: str | torch.device = "auto",
         medium: str = "image") -> Watermarker:
    """Load a checkpoint by name or folder path; None is the default for ``medium`` (image or video)."""
    return Watermarker(zoo.find_card(name_or_path, medium), device=device)
