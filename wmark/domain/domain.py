"""An embedding domain: which grids of tiles carry a model's residual, and how the sum is shaped for
the eye before it is added to the frame.

- **Bands.** Each band is a :class:`~wmark.domain.grid.TileGrid` with ``tiles`` native-size tiles
  along the frame's long side and a relative ``weight``. One tile is the classic any-resolution
  pipeline (the whole frame squashed to the native size); 16 tiles of 64 px put the residual's
  native pixel at about 2 pixels of a 2 MP photo, a fine grid the eye hardly sees; a coarse band
  (4 tiles) survives thumbnails. The decoder reads every tile and soft-combines their logits.
- **Capacity.** With ``classes`` = C the codeword has C times the model's bits: tile t carries part
  ``class(t)``, so a 64-bit model carries 256 bits at C = 4.
- **Shaping.** ``luma``: the residual is projected on luma (equal change of R, G and B), since
  low-frequency chroma is the most visible change there is (VideoSeal 1.0 marks luma only).
  ``jnd``: it is scaled per pixel by the JND map of the frame (:mod:`wmark.perception.jnd`),
  divided by ``JND_REFERENCE``, so flat areas get less and texture more.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from wmark.domain.grid import TileGrid
from wmark.errors import WmarkError
from wmark.perception.jnd import jnd_map, luma

JND_REFERENCE = 8.0
"""JND level (8-bit luma) at which the residual keeps its amplitude: Chou & Li's threshold of a mid-grey area with some texture."""


@dataclass(frozen=True)
class Band:
    tiles: int
    weight: float = 1.0


@dataclass(frozen=True)
class Domain:
    bands: tuple[Band, ...] = field(default=(Band(1),))
    classes: int = 1
    luma: bool = False
    jnd: bool = False

    def __post_init__(self) -> None:
        if not self.bands or any(b.tiles < 1 or b.weight <= 0 for b in self.bands):
            raise WmarkError(f"a domain needs bands of at least 1 tile and a positive weight, got {self.bands}")
        if self.classes < 1:
            raise WmarkError(f"a domain needs at least one codeword class, got {self.classes}")

    @staticmethod
    def from_dict(data: dict | None) -> "Domain":
        """The domain a model card records (None: the whole-frame pipeline)."""
        if not data:
            return Domain()
        bands = tuple(Band(**band) for band in data.get("bands", [{"tiles": 1}]))
        return Domain(bands, int(data.get("classes", 1)), bool(data.get("luma", False)), bool(data.get("jnd", False)))

    def to_dict(self) -> dict:
        return {"bands": [asdict(b) for b in self.bands], "classes": self.classes, "luma": self.luma, "jnd": self.jnd}

    @property
    def is_whole_frame(self) -> bool:
        return self == Domain()

    def codeword_bits(self, model_bits: int) -> int:
        return self.classes * model_bits

    def _grids(self, height: int, width: int, size: int) -> list[tuple[Band, TileGrid, int]]:
        return [(band, TileGrid.over(height, width, band.tiles, size, self.classes), salt)
                for salt, band in enumerate(self.bands)]

    def _tile_signs(self, grid: TileGrid, bits: int, salt: int, device) -> torch.Tensor:
        if grid.count == 1 and self.classes == 1:
            return torch.ones(1, bits, device=device)  # one tile: nothing to break up
        return grid.signs(bits, salt).to(device)

    def residual(self, model, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        """Full-resolution residual (B, 3, H, W) at strength 1, for ±1 ``message`` (B, classes * bits)."""
        batch, (height, width), bits = x.shape[0], x.shape[-2:], model.message_bits
        parts = message.view(batch, self.classes, bits)
        total = torch.zeros_like(x)
        for band, grid, salt in self._grids(height, width, model.size):
            signs = self._tile_signs(grid, bits, salt, x.device)
            tile_messages = parts[:, grid.tile_classes().to(x.device)] * signs  # (B, count, bits)
            tiles = model.residual(grid.split(x), tile_messages.reshape(-1, bits))
            total = total + band.weight * grid.join(tiles, height, width)
        return self.shape(x, total)

    def shape(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """The residual projected on luma and attenuated by the JND map, as the domain says."""
        if self.luma:
            residual = luma(residual).expand(-1, 3, -1, -1)
        if self.jnd:
            residual = residual * (jnd_map(x) / JND_REFERENCE)
        return residual

    def decode(self, model, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes * bits): each tile's logits descrambled, averaged per class, summed over bands."""
        batch, (height, width), bits = x.shape[0], x.shape[-2:], model.message_bits
        total = x.new_zeros(batch, self.classes, bits)
        for _, grid, salt in self._grids(height, width, model.size):
            logits = model.decode(grid.split(x)).float().view(batch, grid.count, bits)
            logits = logits * self._tile_signs(grid, bits, salt, x.device)
            classes = grid.tile_classes().to(x.device)
            for part in range(self.classes):
                chosen = logits[:, classes == part]
                if chosen.shape[1]:
                    total[:, part] += chosen.mean(1)
        return total.flatten(1)
