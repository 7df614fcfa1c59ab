"""An embedding domain: which grids of tiles carry a model's residual, and how the sum is shaped for
the eye before it is added to the frame.

- **Bands.** Each band is a :class:`~wmark.domain.grid.TileGrid` with ``tiles`` native-size tiles
  along the frame's long side and a relative ``weight``. One tile is the classic any-resolution
  pipeline (the whole frame squashed to the native size); 16 tiles of 64 px put the residual's
  native pixel at about 2 pixels of a 2 MP photo, a fine grid the eye hardly sees; a coarse band
  (4 tiles) survives thumbnails. The decoder reads every tile and soft-combines their logits.
- **Size-aware bands.** A band with ``up_to`` is embedded, and read, only in frames whose long side is at most that
  many pixels. On a 768x512 photo the fine band's tiles are 48 px, and JPEG 50, WebP 50 or a halving
  leave little of them, while the coarse band has only 6 tiles; a middle band of 8 tiles (96 px) carries the
  message there, and a 2 MP photo is marked and read as before (benchmarks/size_bands.py).
- **Capacity.** With ``classes`` = C the codeword has C times the model's bits: tile t carries part
  ``class(t)``, so a 64-bit model carries 256 bits at C = 4.
- **Shaping.** ``luma``: the residual is projected on luma (equal change of R, G and B), since
  low-frequency chroma is the most visible change there is (VideoSeal 1.0 marks luma only).
  ``jnd``: it is scaled per pixel by the JND map of the frame (:mod:`wmark.perception.jnd`),
  divided by ``JND_REFERENCE``, so flat areas get less and texture more.
- **Patterns** (``patterns``): instead of running the model on every tile (its cost grows with the
  tiles: 150 at 1080p), it runs once per codeword part and sign on a neutral grey tile, and every tile
  takes its part's pattern in one of 16 variants (a sign and one of the square's 8 rotations and
  mirrorings); the decoder undoes the variant before reading the tile. Measured to read as well as
  content-aware residuals once the JND shapes them (benchmarks/results/domain_levers.json).
- **Template** (``template``, 8-bit levels at strength 1): faint gratings locked to the finest grid, or on a
  frame small enough for a size-aware band to be embedded, to that band's grid (:meth:`Domain.sync`;
  :mod:`wmark.domain.template`), that let an extractor find the grid again in a crop, rotation or rescale
  (:mod:`wmark.sync.template`). A frame of fewer pixels holds fewer of them, so its amplitude grows there
  (:meth:`Domain.template_amplitude`).
- **Combining.** With ``jnd``, the decoder weighs each tile's logits by the tile's mean JND (the
  amplitude it was marked with), a matched filter: flat tiles, marked weakly, count less.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch

from wmark.domain import template as sync_template
from wmark.domain.grid import TileGrid, transform
from wmark.errors import WmarkError
from wmark.perception.jnd import jnd_map, luma

NEUTRAL = 0.5
"""The grey the model sees when it makes content-independent patterns."""
JND_REFERENCE = 8.0
"""JND level (8-bit luma) at which the residual keeps its amplitude: Chou & Li's threshold of a mid-grey area with some texture."""


ALIGN_TILES = 8
"""Tiles of the finest band a fine alignment score reads (see :meth:`Domain.aligner`)."""
FULL_COVERAGE = 0.7
"""Share of a tile the received picture must cover for the tile to be read (see :meth:`Domain.decode`): at 0.98 a
turned picture's black corners cost it most coarse tiles, at 0.5 the half-covered tiles cost a half-area crop of
Storm.jpg 5 bit errors (0.974), enough to fail the search's Bonferroni bound; 0.7 reads both."""
TEMPLATE_PIXELS = 900_000
"""Frames of fewer pixels than this (a 720p video frame has 921,600) get a stronger template: the gratings' peaks in a
picture's spectrum grow with their amplitude times the square root of its pixels, and after the screenshot chain
(crop 80 %, 1 degree, 0.8x, JPEG 70) a 768x512 photo's stood at a median 3.3, a 1 MP photo's at 4.9
(benchmarks/results/sync_stages.json), where a pair needs 2.5 and 2.0 to be found."""
TEMPLATE_GAIN = 1.5
"""The most the template's amplitude grows on a small frame (reached at 400,000 pixels). At the same median FLIP on
the 10 validation photos at 768x512, the screenshot chain read 2 of them with the card's 0.35, 5 with 0.5 and 3 with
0.7 (the mark weaker by the template's share of the FLIP: WebP 50 read 3, 3 and 1); at 1 MP, 0.5 read as 0.35 did."""
CPU_CHUNK = 16
"""Tiles decoded at once on a CPU: a chunk's activations stay in the cache, which makes decoding the 150 tiles of
a 1080p frame 2-3 times faster than one batch (measured by benchmarks/speed.py's extract times)."""


def decode_tiles(model, tiles: torch.Tensor) -> torch.Tensor:
    if tiles.device.type != "cpu" or len(tiles) <= CPU_CHUNK:
        return model.decode(tiles)
    return torch.cat([model.decode(chunk) for chunk in tiles.split(CPU_CHUNK)])


@dataclass(frozen=True)
class Band:
    """``tiles`` tiles along the frame's long side at a relative ``weight``. With ``up_to``, the band is embedded only
    in frames whose long side is at most ``up_to`` pixels (size-aware embedding); a band of weight 0 is never
    embedded. A band is read only in frames it could be embedded in: a photo marked small and shrunk further still
    carries it, while a large one never did (reading it there would cost time and add noise). A small photo
    enlarged past ``up_to`` after marking is read from its other bands."""

    tiles: int
    weight: float = 1.0
    up_to: int | None = None

    def embeds(self, height: int, width: int) -> bool:
        """Whether the band is embedded in a ``height x width`` frame."""
        return self.weight > 0 and (self.up_to is None or max(height, width) <= self.up_to)


@dataclass(frozen=True)
class Domain:
    bands: tuple[Band, ...] = field(default=(Band(1),))
    classes: int = 1
    luma: bool = False
    jnd: bool = False
    patterns: bool = False
    template: float = 0.0

    def __post_init__(self) -> None:
        malformed = any(b.tiles < 1 or b.weight < 0 or (b.up_to is not None and b.up_to < 1) for b in self.bands)
        if not self.bands or malformed or not any(b.weight > 0 and b.up_to is None for b in self.bands):
            raise WmarkError(f"a domain needs bands of at least 1 tile, weights of at least 0 and at least one band "
                             f"of positive weight embedded at every size, got {self.bands}")
        if self.classes < 1:
            raise WmarkError(f"a domain needs at least one codeword class, got {self.classes}")
        if self.template < 0:
            raise WmarkError(f"a template's amplitude cannot be negative, got {self.template}")

    @staticmethod
    def from_dict(data: dict | None) -> "Domain":
        """The domain a model card records (None: the whole-frame pipeline)."""
        if not data:
            return Domain()
        bands = tuple(Band(**band) for band in data.get("bands", [{"tiles": 1}]))
        return Domain(bands, int(data.get("classes", 1)), bool(data.get("luma", False)), bool(data.get("jnd", False)),
                      bool(data.get("patterns", False)), float(data.get("template", 0.0)))

    def to_dict(self) -> dict:
        bands = [{key: value for key, value in asdict(b).items() if value is not None} for b in self.bands]
        return {"bands": bands, "classes": self.classes, "luma": self.luma, "jnd": self.jnd,
                "patterns": self.patterns, "template": self.template}

    def reweighted(self, weights: list[float] | tuple[float, ...]) -> "Domain":
        """The same grids with other band weights. It decodes exactly as this domain does, since :meth:`decode`
        weighs the bands by the gain it measures, not by these weights (a card's ``video_domain``)."""
        if len(weights) != len(self.bands):
            raise WmarkError(f"a domain of {len(self.bands)} bands takes {len(self.bands)} weights, "
                             f"got {list(weights)}")
        return replace(self, bands=tuple(replace(band, weight=float(w)) for band, w in zip(self.bands, weights)))

    def without_finest(self) -> "Domain | None":
        """The same grids with the band of most tiles left unread (weight 0), for a first, cheap look at a picture
        (:meth:`wmark.watermarker.reader.Reader.image_reads`); None where no other band is embedded at every size.
        The finest band is most of a read's work (176 of the 222 tiles a 768x512 photo is read from); the others
        read most marks as received alone (benchmarks/results/small_photos.json, the quick share)."""
        finest = max(range(len(self.bands)), key=lambda i: self.bands[i].tiles)
        weights = [0.0 if i == finest else band.weight for i, band in enumerate(self.bands)]
        if not any(weight > 0 and band.up_to is None for weight, band in zip(weights, self.bands)):
            return None
        return self.reweighted(weights)

    @property
    def is_whole_frame(self) -> bool:
        return self == Domain()

    def codeword_bits(self, model_bits: int) -> int:
        return self.classes * model_bits

    def _grids(self, height: int, width: int, size: int) -> list[tuple[Band, TileGrid, int]]:
        return [(band, TileGrid.over(height, width, band.tiles, size, self.classes), salt)
                for salt, band in enumerate(self.bands)]

    def cut_short(self, height: int, width: int, size: int) -> bool:
        """Whether a ``height x width`` frame is too small for some band's full grid (see
        :data:`~wmark.domain.grid.MAX_ENLARGEMENT`): the mark then has fewer, larger tiles and reads less
        after compression (benchmarks/results/small_inputs.json)."""
        return any(max(grid.rows, grid.cols) < band.tiles for band, grid, _ in self._grids(height, width, size))

    def _tile_signs(self, grid: TileGrid, bits: int, salt: int, device) -> torch.Tensor:
        if grid.count == 1 and self.classes == 1:
            return torch.ones(1, bits, device=device)  # one tile: nothing to break up
        return grid.signs(bits, salt).to(device)

    def residual(self, model, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        """Full-resolution residual (B, 3, H, W) at strength 1, for ±1 ``message`` (B, classes * bits); a
        broadcast view (its channels, and with one message and no JND its batch, share memory): read-only."""
        return self.planes(model, x, message).expand(-1, 3, -1, -1)

    def planes(self, model, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        """The residual as the domain makes it: (B, 1, H, W), its luma plane alone, with ``luma`` (all a video's
        Y plane needs), else (B, 3, H, W); attenuated by the JND map of ``x`` with ``jnd``.

        With ``patterns`` the bands' sum depends on the message alone, so it is made once per distinct
        message in the batch (a video's frames all carry the same one) and only the JND differs per frame;
        ``x`` may then be the frames' luma (B, 1, H, W), all the JND reads."""
        if not self.patterns and x.shape[1] != 3:
            raise WmarkError(f"a domain without patterns marks RGB frames (B, 3, H, W), got {tuple(x.shape)}")
        batch, bits = x.shape[0], model.message_bits
        parts = message.view(batch, self.classes, bits)
        if self.patterns:
            distinct, which = torch.unique(parts.flatten(1), dim=0, return_inverse=True)
            total = self._band_sum(model, x, distinct.view(-1, self.classes, bits))
            total = total.expand(batch, -1, -1, -1) if len(distinct) == 1 else total[which]
        else:
            total = self._band_sum(model, x, parts)
        if self.template:
            amplitude = self.template_amplitude(*x.shape[-2:])
            total = total + amplitude / 255 * self._template(*x.shape[-2:], model.size).to(total.device)
        if self.jnd:
            total = total * jnd_map(x, scale=1 / JND_REFERENCE)
        return total

    def _band_sum(self, model, x: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        """The bands' weighted sum (N, 1 or 3, H, W) for codeword parts (N, classes, bits): the model's
        patterns placed on the grids, or (without ``patterns``) its residuals of the tiles of ``x``."""
        count, bits, (height, width) = len(parts), parts.shape[-1], x.shape[-2:]
        patterns = self._patterns(model, parts) if self.patterns else None
        total = x.new_zeros(count, 1 if self.luma else 3, height, width)  # luma commutes with resizing: 1 plane
        for band, grid, salt in self._grids(height, width, model.size):
            if not band.embeds(height, width):
                continue
            classes = grid.tile_classes().to(x.device)
            if patterns is None:
                tile_messages = parts[:, classes] * self._tile_signs(grid, bits, salt, x.device)  # (B, count, bits)
                tiles = model.residual(grid.split(x), tile_messages.reshape(-1, bits))
            else:
                variants = grid.variants(salt).to(x.device)
                chosen = patterns[:, variants // 8, classes]  # (N, tiles, 3, size, size)
                tiles = transform(chosen.flatten(0, 1), (variants % 8).repeat(count))
            total = total.add_(grid.join(luma(tiles) if self.luma else tiles, height, width), alpha=band.weight)
        return total

    def finest(self, height: int, width: int, size: int) -> tuple[Band, TileGrid, int]:
        """(band, grid, salt) of the band with the most tiles on a ``height x width`` frame."""
        return max(self._grids(height, width, size), key=lambda band: band[1].count)

    def sync_bands(self) -> list[tuple[int, Band]]:
        """(salt, band) of each band a frame's template can be locked to (:meth:`sync`): the band of the most tiles,
        then the size-aware band (``up_to``) of the most tiles, if any is ever embedded. A received picture does not
        tell the size it was marked at, so a reader tries each."""
        indices = range(len(self.bands))
        finest = max(indices, key=lambda i: self.bands[i].tiles)
        limited = [i for i in indices if self.bands[i].up_to is not None and self.bands[i].weight > 0]
        chosen = [finest] + ([max(limited, key=lambda i: self.bands[i].tiles)] if limited else [])
        return [(i, self.bands[i]) for i in dict.fromkeys(chosen)]

    def sync(self, height: int, width: int, size: int) -> tuple[Band, TileGrid, int]:
        """(band, grid, salt) of the grid the template of a ``height x width`` frame is locked to: the size-aware band
        of :meth:`sync_bands` where it is embedded, else the finest band. On a small frame the finest band's tiles are
        small and the gratings, at 10 and 11 cycles a tile, fine (a period of 3.4 px at 768x512), and JPEG removes
        them: after an 80 % crop saved at JPEG 70, 0 of 6 val photos at 768x512 showed them, 5 of 6 on the 8-tile
        band; at about 1 MP the screenshot chain read 0 of 6 with them, 5 of 6 on the 8-tile band, for 0.01-0.02 more
        FLIP (benchmarks/results/template_pitch.json)."""
        candidates = self.sync_bands()
        salt, band = next(((salt, band) for salt, band in reversed(candidates) if band.embeds(height, width)),
                          candidates[0])
        return band, TileGrid.over(height, width, band.tiles, size, self.classes), salt

    def template_amplitude(self, height: int, width: int) -> float:
        """The template's amplitude (8-bit levels at strength 1) on a ``height x width`` frame: ``template``, times
        ``sqrt(TEMPLATE_PIXELS / pixels)`` on a frame of fewer than :data:`TEMPLATE_PIXELS` pixels, at most
        :data:`TEMPLATE_GAIN` times, so that a small photo's gratings stand about as high in its spectrum as a 1 MP
        photo's."""
        gain = min(TEMPLATE_GAIN, max(1.0, (TEMPLATE_PIXELS / (height * width)) ** 0.5))
        return self.template * gain

    def _template(self, height: int, width: int, size: int) -> torch.Tensor:
        _, grid, _ = self.sync(height, width, size)
        return sync_template.pattern(height, width, grid.rows, grid.cols)

    def _patterns(self, model, parts: torch.Tensor) -> torch.Tensor:
        """The model's residual on a grey tile for each codeword part and its negation: (N, 2, classes, 3, size,
        size) for parts (N, classes, bits)."""
        bits, size = parts.shape[-1], model.size
        messages = torch.stack([parts, -parts], 1).reshape(-1, bits)
        grey = torch.full((1, 3, size, size), NEUTRAL, device=parts.device)
        return model.residuals_on(grey, messages).view(-1, 2, self.classes, 3, size, size)

    def tiles(self, x: torch.Tensor, size: int, bits: int,
              turned: float = 0.0) -> list[tuple[TileGrid, torch.Tensor, torch.Tensor]]:
        """For each band embedded in frames ``x`` (B, 3, H, W) of their size (:meth:`Band.embeds`), turned back by
        ``turned`` degrees first (see :meth:`TileGrid.cut`): its grid, its tiles as the decoder reads them (B * count,
        3, size, size; each tile's variant undone with ``patterns``), and the ±1 signs that turn the tiles' logits
        into their codeword part's, shape (1, count, 1) or (1, count, bits)."""
        return [(grid, *self._oriented(grid, salt, grid.split(x, turned), len(x), bits))
                for band, grid, salt in self._grids(*x.shape[-2:], size) if band.embeds(*x.shape[-2:])]

    def _oriented(self, grid: TileGrid, salt: int, tiles: torch.Tensor, batch: int,
                  bits: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.patterns:
            variants = grid.variants(salt).to(tiles.device)
            tiles = transform(tiles, (variants % 8).repeat(batch), inverse=True)
            return tiles, (1 - 2 * (variants // 8)).float().view(1, -1, 1)
        return tiles, self._tile_signs(grid, bits, salt, tiles.device).unsqueeze(0)

    def aligner(self, model, x: torch.Tensor, finest: bool = False) -> Callable[[list[float]], list[float]]:
        """Scores of how well frames ``x`` (B, 3, H, W), turned back by each of a list of angles, line up with the
        marked grids: the median |logit| of the tiles of the coarsest band, whose tiles are the largest, so it is
        cheap and tolerates the most misalignment (about 0.5 degree at 2 MP); or, ``finest``, of
        :data:`ALIGN_TILES` tiles of the finest band spread over the frame, which tell apart angles an
        eighth of a degree apart. The frames are fit onto the band's grid once; the tiles of all the angles
        are decoded together."""
        if finest:
            _, grid, salt = self.finest(*x.shape[-2:], model.size)
        else:
            _, grid, salt = min(self._grids(*x.shape[-2:], model.size), key=lambda band: band[1].count)
        fitted, frame = grid.fit(x), tuple(x.shape[-2:])
        chosen = torch.linspace(0, grid.count - 1, min(grid.count, ALIGN_TILES)).round().long()
        chosen = (chosen + grid.count * torch.arange(len(x)).view(-1, 1)).flatten().to(x.device)

        @torch.no_grad()
        def scores(angles: list[float]) -> list[float]:
            tiles = torch.cat([self._oriented(grid, salt, grid.cut(fitted, turned, frame), len(x),
                                              model.message_bits)[0][chosen] for turned in angles])
            magnitudes = decode_tiles(model, tiles).abs().view(len(angles), -1)
            return magnitudes.median(1).values.tolist()
        return scores

    def decode(self, model, x: torch.Tensor, turned: float = 0.0, coverage: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, classes * bits) of frames ``x`` turned back by ``turned`` degrees: the bands' part means
        (:meth:`band_means`) summed, each weighted by its gain over its variance. With ``coverage`` (B, 1, H, W; 1
        where ``x`` holds the received picture, see :mod:`wmark.sync.reframe`) only tiles it covers in full are
        read."""
        part_means, gains = zip(*self.band_means(model, x, turned, coverage))
        gains = torch.stack(gains)  # (bands, B)
        # A band without a measured weight gets the mean of the others' when it was read whole (a whole-frame
        # band). On a canvas its tiles may be part-covered, their logits noise whose spread nobody measured: with
        # another band measured it is left out (a 70 % crop of Aqua.jpg read 0.943 of its bits with it, 1.0 without).
        known = ~gains.isnan()
        mean_known = torch.where(known, gains, torch.zeros_like(gains)).sum(0) / known.sum(0).clamp(min=1)
        unmeasured = torch.where(known.any(0), mean_known if coverage is None else torch.zeros_like(mean_known),
                                 torch.ones_like(mean_known))
        total = torch.zeros_like(part_means[0])
        for means, gain, measured in zip(part_means, gains, known):
            total += means * torch.where(measured, gain, unmeasured).view(-1, 1, 1)
        return total.flatten(1)

    def band_means(self, model, x: torch.Tensor, turned: float = 0.0,
                   coverage: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per band of frames ``x`` (turned back by ``turned`` degrees; with ``coverage``, only tiles it covers in
        full, see :meth:`decode`): its part means (B, classes, bits), each tile's logits descrambled and averaged
        per class (weighted by the tiles' mean JND with ``jnd``), and its gain over variance (B,), NaN where the
        band read no part twice."""
        batch, bits = x.shape[0], model.message_bits
        bands = []
        jnd = jnd_map(x) if self.jnd else None
        for grid, tiles, signs in self.tiles(x, model.size, bits, turned):
            covered = None if coverage is None else grid.split(coverage).flatten(1).mean(1) >= FULL_COVERAGE
            if covered is None:
                logits = decode_tiles(model, tiles).float()
            else:  # a tile left out is not decoded
                logits = tiles.new_zeros(len(tiles), bits, dtype=torch.float)
                if covered.any():
                    logits[covered] = decode_tiles(model, tiles[covered]).float()
            logits = logits.view(batch, grid.count, bits) * signs
            weights = (grid.split(jnd, turned).flatten(1).mean(1).view(batch, grid.count, 1) if jnd is not None
                       else logits.new_ones(batch, grid.count, 1))
            if covered is not None:
                weights = weights * covered.view(batch, grid.count, 1)
            classes = grid.tile_classes().to(x.device)
            means = x.new_zeros(batch, self.classes, bits)
            spread, counts = x.new_zeros(batch), x.new_zeros(batch)
            tiles_read, parts_read = (weights[..., 0] > 0).sum(1).float(), x.new_zeros(batch)
            for part in range(self.classes):
                mine = classes == part
                if mine.any():
                    w = weights[:, mine]
                    means[:, part] = (logits[:, mine] * w).sum(1) / w.sum(1).clamp(min=1e-9)
                    spread += (w * (logits[:, mine] - means[:, part, None]) ** 2).sum((1, 2))
                    counts += w.sum((1, 2)) * bits
                    parts_read += (w[..., 0] > 0).any(1).float()
            # Each band's part means estimate gain x message + noise; the best weight is gain / variance. The
            # gain is the mean |part mean|; the variance of a part mean is the tiles' spread around it divided
            # by how many tiles it averages. It takes a part of two tiles read to measure a spread: a band read
            # with one tile a part has none (NaN here, weighed in by :meth:`decode`).
            variance = spread / counts.clamp(min=1e-9) / (tiles_read / parts_read.clamp(min=1)).clamp(min=1)
            gain = means.abs().flatten(1).mean(1)
            measured = tiles_read - parts_read >= 1
            unknown = torch.full_like(gain, float("nan"))
            bands.append((means, torch.where(measured, gain / variance.clamp(min=1e-9), unknown)))
        return bands
