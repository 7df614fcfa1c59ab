"""Marking a file safely: refusals, an atomic write, quality measured on the file as stored, and a read-back check.

Refused unless forced: overwriting the input, an input that already carries the model's mark (under any key), and a
result under :data:`MIN_PSNR`. The input is never modified; an output that does not read back is kept, and
:class:`~wmark.watermarker.reports.NotVerified` says so.
"""
from __future__ import annotations

from pathlib import Path

import torch

from wmark.errors import WmarkError
from wmark.io.atomic import check_folder
from wmark.io.image import Picture, from_uint8, read_image, to_uint8, write_image
from wmark.io.media import media_kind
from wmark.perception.flip import flip_vs_jpeg
from wmark.stats import psnr, ssim
from wmark.watermarker.decision import Decision
from wmark.watermarker.embedder import Embedder
from wmark.watermarker.reader import Reader
from wmark.watermarker.reports import EmbedReport, NotVerified, VideoEmbedReport
from wmark.watermarker.video import embed_video, sample_logits

MIN_PSNR = 25.0
"""Below this PSNR (dB) a result is a damaged picture, not a watermarked one: embedding refuses it unless forced."""


class FileMarker:
    """Marks image and video files with one model."""

    def __init__(self, name: str, embedder: Embedder, reader: Reader, decision: Decision) -> None:
        self.name, self.embedder, self.reader, self.decision = name, embedder, reader, decision

    def embed(self, source: Path, output: Path, codeword: torch.Tensor, *, key: str | None, raw: bool,
              strength: float | None, quality: int | None, force: bool, psnr_target: float | None, flip: bool,
              verify: bool, **video_options) -> EmbedReport | VideoEmbedReport:
        """Mark ``source`` into ``output`` (see the module); ``raw`` codewords verify by a binomial match."""
        if output.exists() and output.resolve() == source.resolve() and not force:
            raise WmarkError(f"refusing to overwrite the input {source}; give --force to do so")
        check_folder(output)
        video = media_kind(source) == "video"
        if video and (psnr_target is not None or flip):
            raise WmarkError("--psnr and --flip apply to images; a video takes --strength")
        picture = None if video else read_image(source)
        if not force:
            self._refuse_marked(source, picture.rgb if picture else None, key)
        stored = None  # a video's frames are read back by _verify
        if video:
            report = embed_video(self.embedder, self.name, source, output, codeword, strength,
                                 floor=None if force else MIN_PSNR, **video_options)
        else:
            report, stored = self._embed_image(picture, source, output, codeword, strength, psnr_target, quality, flip, force)
        if verify:
            self._verify(report, output, codeword, key, raw, stored)
        return report

    def _embed_image(self, picture: Picture, source: Path, output: Path, codeword: torch.Tensor, strength: float | None,
                     psnr_target: float | None, quality: int | None, flip: bool,
                     force: bool) -> tuple[EmbedReport, torch.Tensor]:
        """The report on the file written, and its pixels as read back."""
        marked, used = self.embedder.embed(picture.rgb, codeword, strength, psnr_target)
        quality_db = float(psnr(from_uint8(to_uint8(marked[0]))[None], picture.rgb))
        if quality_db < MIN_PSNR and not force:
            raise WmarkError(f"the marked image would have a PSNR of {quality_db:.1f} dB, under the {MIN_PSNR:g} dB "
                             "floor; lower --strength or give --force")
        write_image(picture, marked, output, quality=quality)
        stored = read_image(output).rgb
        visibility = flip_vs_jpeg(to_uint8(picture.rgb[0]), to_uint8(stored[0])) if flip else {}
        report = EmbedReport(
            path=str(output),
            input=str(source),
            model=self.name,
            psnr=round(float(psnr(stored, picture.rgb)), 3),
            ssim=round(float(ssim(stored, picture.rgb)), 5),
            codeword="".join(map(str, codeword.tolist())),
            strength=round(float(used[0]), 5),
            flip=visibility.get("flip"),
            flip_ratio=visibility.get("flip_ratio"),
            warning=self.embedder.size_warning(self.name, *stored.shape[-2:]),
        )
        return report, stored

    def _logits(self, path: Path, pixels: torch.Tensor | None) -> torch.Tensor:
        """Logits of an image (``pixels``, already read) or the combined logits of a few frames of a video."""
        return self.reader.image(pixels) if pixels is not None else sample_logits(self.reader, path)

    def _refuse_marked(self, source: Path, pixels: torch.Tensor | None, key: str | None) -> None:
        """A second mark of the same model garbles both, whatever the keys: refuse one under this key (decoded) or
        under another (:meth:`~wmark.watermarker.decision.Decision.mark_present`)."""
        found = self.decision.extract(self._logits(source, pixels), key=key)
        if found.detected:
            raise WmarkError(f"{source} already carries a {self.name} mark under this key (message "
                             f"{found.message!r}); a second mark would garble both (--force marks it anyway)")
        if found.mark_present:
            raise WmarkError(f"{source} already carries a {self.name} mark under another key; a second mark would "
                             "garble both (--force marks it anyway)")

    def _verify(self, report: EmbedReport | VideoEmbedReport, output: Path, codeword: torch.Tensor,
                key: str | None, raw: bool, stored: torch.Tensor | None) -> None:
        """Decode the written file (an image's ``stored`` pixels, as read back) and record whether it gives the
        payload back; :class:`NotVerified` when it does not."""
        logits = self._logits(output, stored)
        report.bit_accuracy = round(float(((logits > 0).to(torch.uint8) == codeword).float().mean()), 4)
        report.verified = self.decision.verified(logits, codeword, key, raw)
        if not report.verified:
            advice = ("it is too small for this model's tile grid: try -m mbrs-64 (3 bytes of text at most)"
                      if report.warning else "raise --strength or try another model (-m)")
            raise NotVerified(f"{output} was written but does not read back the payload ({report.bit_accuracy:.0%} "
                              f"of bits); {advice}, or --no-verify to skip", report)
