"""The strength policy and the marked pixels: ``x_w = x + s * residual`` (DESIGN.md), per image or per video frame."""
from __future__ import annotations

import math

import torch

from wmark import pipeline
from wmark.domain import Domain
from wmark.errors import WmarkError
from wmark.io.yuv import YuvFrames


def message(codeword: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """The ±1 message (batch, L) of a 0/1 ``codeword`` (L,)."""
    return (codeword.to(device).float() * 2 - 1).expand(batch, -1)


class Embedder:
    """A model, the domains it marks images and video frames in, its card's strength and PSNR floor."""

    def __init__(self, model, domain: Domain, video_domain: Domain, strength: float, psnr_floor: float | None,
                 device: torch.device) -> None:
        self.model, self.domain, self.video_domain = model, domain, video_domain
        self.card_strength, self.psnr_floor, self.device = strength, psnr_floor, device

    def strength(self, strength: float | None) -> float:
        """``strength``, or the card's when None; a WmarkError unless positive."""
        s = self.card_strength if strength is None else strength
        if not math.isfinite(s) or s <= 0:
            raise WmarkError(f"strength must be a positive number, got {s}")
        return s

    def embed(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None, psnr: float | None,
              video: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(marked batch, clamped, not rounded; the strength used for each image), in the image domain or, with
        ``video``, the video one.

        ``psnr`` sets each image's strength so that the residual alone gives that PSNR; it replaces ``strength``.
        Where the card has a ``psnr_floor`` (dB), its strength is lowered image by image so that no image's residual
        alone takes it under the floor; an explicit ``strength`` or ``psnr`` is used as given. (Video files, marked
        through :func:`wmark.watermarker.video.embed_video`, keep one strength for every frame.)"""
        x = x.to(self.device)
        residual = pipeline.residual(self.model, x, message(codeword, x.shape[0], self.device),
                                     self.video_domain if video else self.domain)
        rms = residual.flatten(1).square().mean(1).sqrt().clamp(min=1e-12)
        if psnr is None:
            s = torch.full((x.shape[0],), self.strength(strength), device=self.device)
            if strength is None and self.psnr_floor is not None:
                s = torch.minimum(s, 10 ** (-self.psnr_floor / 20) / rms)
        elif strength is not None:
            raise WmarkError("give either a strength or a PSNR target, not both")
        elif not math.isfinite(psnr) or psnr <= 0:
            raise WmarkError(f"a PSNR target must be a positive number of dB, got {psnr}")
        else:
            s = 10 ** (-psnr / 20) / rms
        return torch.addcmul(x, s.view(-1, 1, 1, 1), residual).clamp_(0, 1).cpu(), s.cpu()

    @torch.no_grad()
    def frame_residual(self, frames: YuvFrames, codeword: torch.Tensor) -> torch.Tensor:
        """The strength-1 residual of video frames: at native size for the whole-frame domain (resized in the
        planes, which is cheap), else at full resolution in the video domain (one plane for a luma domain; a domain
        of patterns reads only the frames' luma, for the JND)."""
        marks = message(codeword, len(frames), self.device)
        if self.video_domain.is_whole_frame:
            return self.model.residual(frames.rgb(self.model.size), marks)
        frames_read = frames.luma() if self.video_domain.patterns else frames.rgb()
        return self.video_domain.planes(self.model, frames_read, marks)

    def size_warning(self, name: str, height: int, width: int, what: str = "image") -> str | None:
        """Why a ``height x width`` image (or video) is marked weaker than usual, or None."""
        if self.domain.is_whole_frame or not self.domain.cut_short(height, width, self.model.size):
            return None
        return (f"a {width}x{height} {what} is too small for {name}'s full tile grid, so its mark reads less "
                f"after compression; a whole-frame model such as mbrs-64 holds up better on small {what}s")
