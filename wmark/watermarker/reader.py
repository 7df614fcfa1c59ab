"""Decoder logits of frames at any resolution, with a pose (:class:`wmark.sync.search.Pose`) undone first."""
from __future__ import annotations

from typing import Callable

import torch

from wmark import pipeline
from wmark.domain import Domain
from wmark.io.yuv import YuvFrames
from wmark.sync import dihedral, reframe
from wmark.sync.search import Pose


class Reader:
    """A model and the domains it reads: images in ``domain``, video frames in ``video_domain`` (default: the same
    one; the two share their grids and differ in band weights, so a band video frames never carry is not read)."""

    def __init__(self, model, domain: Domain, device: torch.device, video_domain: Domain | None = None) -> None:
        self.model, self.domain, self.device = model, domain, device
        self.video_domain = domain if video_domain is None else video_domain
        self.quick_domain = domain.without_finest()

    def frames(self, x: torch.Tensor, pose: Pose = Pose(), video: bool = False, quick: bool = False) -> torch.Tensor:
        """Logits (B, L) for a float batch (B, 3, H, W) at any resolution, ``pose`` undone first; ``video`` frames
        are read in the video domain; ``quick``: from the bands other than the finest alone (``quick_domain``)."""
        domain = self.video_domain if video else self.quick_domain if quick else self.domain
        x = dihedral.UNDO[pose.transform](x.to(self.device))
        if pose.reframe is not None:
            frames, coverage = reframe.canvas(x, pose.reframe, self.model.size)
            return pipeline.decode(self.model, frames, domain, coverage=coverage).float().cpu()
        return pipeline.decode(self.model, x, domain, pose.rotation).float().cpu()

    def image(self, x: torch.Tensor, pose: Pose = Pose(), quick: bool = False) -> torch.Tensor:
        """Logits (L,) for one image (1, 3, H, W); ``quick`` as for :meth:`frames`."""
        return self.frames(x, pose, quick=quick)[0]

    def image_reads(self, x: torch.Tensor, searches: bool = True) -> list[Callable[[Pose], torch.Tensor]]:
        """The looks a search takes at one image (1, 3, H, W) under each pose, in turn
        (:func:`wmark.watermarker.search.first_detected`): where the domain has bands besides its finest and the
        level ``searches``, those bands alone first, about a fifth of the work on a small photo, then every band. A
        level that does not search (``off``) takes the whole look alone: one decode, one test."""
        whole = [lambda pose: self.image(x, pose)]
        if self.quick_domain is None or not searches:
            return whole
        return [lambda pose: self.image(x, pose, quick=True), *whole]

    def by_look(self, x: torch.Tensor) -> bool:
        """Whether a search at image ``x`` (1, 3, H, W) takes the first of :meth:`image_reads`' looks at every pose
        before the next look at any (:func:`wmark.watermarker.search.in_turn`): where that look reads two bands or more
        at this size, as a photo up to the size-aware band's size does, and then reads as many marks as received as
        every band (76 of 84 edited small photos each). Above that size it reads the coarsest band alone and can miss
        a 2 MP photo as received (OneStandsOut.jpg: 10.0 s read by look against 0.6 s)."""
        height, width = x.shape[-2:]
        quick = self.quick_domain
        return quick is not None and sum(band.embeds(height, width) for band in quick.bands) >= 2

    def yuv(self, frames: YuvFrames, pose: Pose = Pose()) -> torch.Tensor:
        """Logits (B, L) for decoded 4:2:0 video frames (resized to the native size in their planes for the
        whole-frame domain), ``pose`` undone first."""
        pipeline.check_size(frames.y.unsqueeze(1))
        frames, undo = frames.to(self.device), dihedral.UNDO[pose.transform]
        if pose.reframe is not None:
            return self.frames(frames.rgb(), pose, video=True)
        if not self.video_domain.is_whole_frame or pose.rotation:
            return pipeline.decode(self.model, undo(frames.rgb()), self.video_domain, pose.rotation).float().cpu()
        with torch.no_grad():  # a flip or quarter turn commutes with squashing the frame to the square native size
            return self.model.decode(undo(frames.rgb(self.model.size))).float().cpu()
