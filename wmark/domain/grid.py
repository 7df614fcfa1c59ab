"""A grid of native-size tiles laid over a frame, fixed relative to the frame's edges.

The frame is resized to ``rows x cols`` tiles of the model's native size, ``tiles`` along its long
side and as many as its aspect ratio gives along the short one, so a resize of the frame keeps every
tile where it was. Each tile carries one of ``classes`` parts of the codeword, in a diagonal pattern,
and its own pseudo-random ±1 scrambling of that part, so the mark is not periodic and cannot be
averaged out across tiles (the tiling idea of the invisible-default issue; the scrambling as in
spread-spectrum watermarking, Cox et al. 1997).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wmark.domain import rotation

SCRAMBLE_SEED = 0x5EED
MAX_ENLARGEMENT = 1.5


@dataclass(frozen=True)
class TileGrid:
    rows: int
    cols: int
    size: int
    classes: int

    @staticmethod
    def over(height: int, width: int, tiles: int, size: int, classes: int) -> "TileGrid":
        """The grid of ``tiles`` tiles along the long side of a ``height x width`` frame, or fewer on a small
        frame, so that the grid never enlarges the frame more than :data:`MAX_ENLARGEMENT` times: a residual
        made on an enlarged frame is lost when it is shrunk back."""
        tiles = max(1, min(tiles, int(MAX_ENLARGEMENT * max(height, width) / size)))
        short = max(1, round(tiles * min(height, width) / max(height, width)))
        rows, cols = (tiles, short) if height > width else (short, tiles)
        return TileGrid(rows, cols, size, classes)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def tile_classes(self) -> torch.Tensor:
        """The codeword part (0..classes-1) each tile carries, row by row, shape (count,)."""
        r = torch.arange(self.rows).view(-1, 1)
        c = torch.arange(self.cols).view(1, -1)
        return ((c + r * max(1, self.classes // 2)) % self.classes).flatten()

    def signs(self, bits: int, salt: int) -> torch.Tensor:
        """±1 scrambling (count, bits) of each tile's part; ``salt`` tells the grid's band apart."""
        generator = torch.Generator().manual_seed(SCRAMBLE_SEED + 7919 * salt + 104729 * self.rows + self.cols)
        return torch.randint(0, 2, (self.count, bits), generator=generator).float() * 2 - 1

    def variants(self, salt: int) -> torch.Tensor:
        """Each tile's variant 0..15 (count,): bit 3 flips the message's sign, bits 0-2 pick one of the eight
        rotations and mirrorings of the square (see :func:`transform`); ``salt`` tells the grid's band apart."""
        generator = torch.Generator().manual_seed(SCRAMBLE_SEED + 7919 * salt + 104729 * self.rows + self.cols + 1)
        return torch.randint(0, 16, (self.count,), generator=generator)

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, rows * size, cols * size), the frame resized onto the grid."""
        shape = (self.rows * self.size, self.cols * self.size)
        if x.shape[-2:] == shape:
            return x
        return F.interpolate(x, size=shape, mode="bilinear", antialias=True, align_corners=False)

    def cut(self, fitted: torch.Tensor, turned: float = 0.0, frame: tuple[int, int] | None = None) -> torch.Tensor:
        """A frame :meth:`fit` onto the grid -> tiles (B * count, C, size, size); with ``turned`` degrees, the
        ``frame`` (height, width) it was fit from is first turned back (:func:`wmark.domain.rotation.undo`)."""
        if turned:
            fitted = rotation.undo(fitted, turned, *frame)
        batch, channels = fitted.shape[:2]
        tiles = fitted.reshape(batch, channels, self.rows, self.size, self.cols, self.size).permute(0, 2, 4, 1, 3, 5)
        return tiles.reshape(batch * self.count, channels, self.size, self.size)

    def split(self, x: torch.Tensor, turned: float = 0.0) -> torch.Tensor:
        """(B, C, H, W) -> tiles (B * count, C, size, size), the frame resized onto the grid (after turning it
        back by ``turned`` degrees, see :meth:`cut`)."""
        return self.cut(self.fit(x), turned, tuple(x.shape[-2:]))

    def join(self, tiles: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Tiles (B * count, C, size, size) -> (B, C, height, width), resized from the grid to the frame."""
        channels = tiles.shape[1]
        x = tiles.reshape(-1, self.rows, self.cols, channels, self.size, self.size).permute(0, 3, 1, 4, 2, 5)
        x = x.reshape(-1, channels, self.rows * self.size, self.cols * self.size)
        if x.shape[-2:] == (height, width):
            return x
        shrink = height < x.shape[-2] or width < x.shape[-1]
        return F.interpolate(x, size=(height, width), mode="bilinear", antialias=shrink, align_corners=False)


def transform(tiles: torch.Tensor, dihedral: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Rotate (by 90 degrees times ``dihedral`` mod 4) and, for ``dihedral`` >= 4, mirror each square tile of
    (N, C, S, S); ``inverse`` undoes it."""
    out = tiles.clone()
    for d in range(1, 8):
        chosen = dihedral == d
        if chosen.any():
            t = tiles[chosen]
            if inverse:
                t = torch.rot90(t, -(d % 4), (-2, -1))
                out[chosen] = t.flip(-1) if d >= 4 else t
            else:
                out[chosen] = torch.rot90(t.flip(-1) if d >= 4 else t, d % 4, (-2, -1))
    return out
