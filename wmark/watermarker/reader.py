"""Decoder logits of frames at any resolution, with a pose (:class:`wmark.sync.search.Pose`) undone first."""
from __future__ import annotations

import torch

from wmark import pipeline
from wmark.domain import Domain
from wmark.io.yuv import YuvFrames
from wmark.sync import dihedral, reframe
from wmark.sync.search import Pose


class Reader:
    """A model and the domain it reads."""

    def __init__(self, model, domain: Domain, device: torch.device) -> None:
        self.model, self.domain, self.device = model, domain, device

    def frames(self, x: torch.Tensor, pose: Pose = Pose()) -> torch.Tensor:
        """Logits (B, L) for a float batch (B, 3, H, W) at any resolution, ``pose`` undone first."""
        x = dihedral.UNDO[pose.transform](x.to(self.device))
        if pose.reframe is not None:
            frames, coverage = reframe.canvas(x, pose.reframe, self.model.size)
            return pipeline.decode(self.model, frames, self.domain, coverage=coverage).float().cpu()
        return pipeline.decode(self.model, x, self.domain, pose.rotation).float().cpu()

    def image(self, x: torch.Tensor, pose: Pose = Pose()) -> torch.Tensor:
        """Logits (L,) for one image (1, 3, H, W)."""
        return self.frames(x, pose)[0]

    def yuv(self, frames: YuvFrames, pose: Pose = Pose()) -> torch.Tensor:
        """Logits (B, L) for decoded 4:2:0 video frames (resized to the native size in their planes for the
        whole-frame domain), ``pose`` undone first."""
        pipeline.check_size(frames.y.unsqueeze(1))
        frames, undo = frames.to(self.device), dihedral.UNDO[pose.transform]
        if pose.reframe is not None:
            return self.frames(frames.rgb(), pose)
        if not self.domain.is_whole_frame or pose.rotation:
            return pipeline.decode(self.model, undo(frames.rgb()), self.domain, pose.rotation).float().cpu()
        with torch.no_grad():  # a flip or quarter turn commutes with squashing the frame to the square native size
            return self.model.decode(undo(frames.rgb(self.model.size))).float().cpu()
