"""Video frames as 8-bit Y'CbCr 4:2:0 planes, marked without a round trip through 8-bit RGB.

Converting a decoded frame to 8-bit RGB and back costs every frame a generation: FFmpeg's
swscale truncates (about -1 level of luma on average) and chroma is resampled twice. Video is
therefore marked in its own planes: the model sees RGB at its native size (the planes are resized
first, which is cheap), and its residual goes back as luma and chroma changes added to the planes.
Unmarked content passes bit-exactly; a do-nothing transcode only pays the encoder's loss.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

# Luma weights (Kr, Kb) of the ITU matrices by FFmpeg's colorspace code: 1 BT.709, 9 and 10 BT.2020;
# the others it may meet (unspecified, BT.601, SMPTE 170M) are taken as BT.601.
_BT709, _BT601, _BT2020 = (0.2126, 0.0722), (0.299, 0.114), (0.2627, 0.0593)
_MATRICES = {1: _BT709, 9: _BT2020, 10: _BT2020}
_FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG


@dataclass
class YuvFrames:
    """A batch of 4:2:0 frames: ``y`` uint8 (B, H, W), ``u`` and ``v`` uint8 (B, H/2, W/2); float planes for
    frames that are means of others (:meth:`grouped`), which are read, not encoded."""

    y: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    kr: float = _BT601[0]
    kb: float = _BT601[1]
    full_range: bool = False

    @staticmethod
    def matrix(colorspace: int, color_range: int) -> dict:
        """The conversion settings of a frame with FFmpeg's ``colorspace`` and ``color_range`` codes."""
        kr, kb = _MATRICES.get(colorspace, _BT601)
        return {"kr": kr, "kb": kb, "full_range": color_range == _FULL_RANGE}

    def __len__(self) -> int:
        return self.y.shape[0]

    def take(self, index) -> "YuvFrames":
        """The frames at ``index`` (a list of positions or a slice)."""
        return replace(self, y=self.y[index], u=self.u[index], v=self.v[index])

    def grouped(self, size: int) -> tuple["YuvFrames", torch.Tensor]:
        """(frames, counts): the mean of each run of ``size`` consecutive frames (the last run may be shorter), in
        float planes, and how many frames each mean holds."""
        counts = torch.tensor([min(size, len(self) - start) for start in range(0, len(self), size)])
        mean = lambda plane: torch.stack([run.float().mean(0) for run in plane.split(size)])  # noqa: E731
        return replace(self, y=mean(self.y), u=mean(self.u), v=mean(self.v)), counts

    def to(self, device: torch.device | str) -> "YuvFrames":
        return replace(self, y=self.y.to(device), u=self.u.to(device), v=self.v.to(device))

    def _scales(self) -> tuple[float, float, float]:
        """(luma offset, luma scale, chroma scale) between 8-bit codes and Y' in [0, 1], Cb/Cr in ±0.5."""
        return (0.0, 255.0, 255.0) if self.full_range else (16.0, 219.0, 224.0)

    def luma(self) -> torch.Tensor:
        """Float luma Y' (B, 1, H, W) in [0, 1]."""
        offset, luma_scale, _ = self._scales()
        return self.y.unsqueeze(1).float().sub_(offset).div_(luma_scale).clamp_(0, 1)

    def rgb(self, size: int | None = None) -> torch.Tensor:
        """Float RGB (B, 3, H, W) in [0, 1], or (B, 3, size, size) resized (anti-aliased) in the planes."""
        planes = [p.unsqueeze(1) for p in (self.y, self.u, self.v)]
        if size is not None:
            planes = [F.interpolate(p if p.device.type == "cpu" else p.float(), size=(size, size),
                                    mode="bilinear", antialias=True, align_corners=False) for p in planes]
        elif planes[1].shape[-2:] != planes[0].shape[-2:]:
            planes[1:] = [F.interpolate(p.float(), size=planes[0].shape[-2:], mode="bilinear", align_corners=False)
                          for p in planes[1:]]
        offset, luma_scale, chroma_scale = self._scales()
        luma = (planes[0].float() - offset) / luma_scale
        cb, cr = ((p.float() - 128) / chroma_scale for p in planes[1:])
        red = luma + 2 * (1 - self.kr) * cr
        blue = luma + 2 * (1 - self.kb) * cb
        green = (luma - self.kr * red - self.kb * blue) / (1 - self.kr - self.kb)
        return torch.cat([red, green, blue], 1).clamp(0, 1)

    def add_rgb(self, residual: torch.Tensor) -> "YuvFrames":
        """These frames plus an RGB residual (B, 3, h, w) of any size: converted to luma and chroma
        changes, resized to each plane, added, rounded and clamped to 8 bits."""
        red, green, blue = residual.float().unbind(1)
        luma = self.kr * red + (1 - self.kr - self.kb) * green + self.kb * blue
        cb = (blue - luma) / (2 * (1 - self.kb))
        cr = (red - luma) / (2 * (1 - self.kr))
        _, luma_scale, chroma_scale = self._scales()
        return replace(self, y=_added(self.y, luma, luma_scale), u=_added(self.u, cb, chroma_scale),
                       v=_added(self.v, cr, chroma_scale))

    def add_luma(self, residual: torch.Tensor) -> "YuvFrames":
        """These frames plus a luma residual (B, 1, h, w), an equal change of R, G and B: only the Y plane
        changes (what :meth:`add_rgb` gives for such a residual, without the chroma work)."""
        return replace(self, y=_added(self.y, residual.float()[:, 0], self._scales()[1]))

    def add(self, residual: torch.Tensor) -> "YuvFrames":
        """These frames plus a residual of one channel (:meth:`add_luma`) or three (:meth:`add_rgb`)."""
        return self.add_luma(residual) if residual.shape[1] == 1 else self.add_rgb(residual)

    def luma_psnr(self, other: "YuvFrames") -> torch.Tensor:
        """PSNR of the luma planes, per frame, in dB (the usual video PSNR-Y)."""
        mse = (self.y.to(torch.int16) - other.y).float().square_().flatten(1).mean(1)
        return 10 * torch.log10(255**2 / mse)


def _added(plane: torch.Tensor, change: torch.Tensor, scale: float) -> torch.Tensor:
    """An 8-bit plane (B, h, w) plus a float ``change`` (B, H, W) in RGB units times ``scale``, resized to the
    plane, rounded and clamped."""
    change = change.unsqueeze(1) * scale
    if change.shape[-2:] != plane.shape[-2:]:
        shrink = change.shape[-1] > plane.shape[-1]
        change = F.interpolate(change, size=plane.shape[-2:], mode="bilinear", antialias=shrink, align_corners=False)
    return (plane + change.squeeze(1).round_()).clamp_(0, 255).to(torch.uint8)
