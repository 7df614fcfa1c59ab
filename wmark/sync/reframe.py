"""Reading a crop: where a received picture sat in the marked frame, from the template and the tiles' own marks.

The template (:mod:`wmark.sync.template`) gives the pitch, angle and offset of the grid it is locked to in the
received picture (the finest band's, or on a frame marked small the size-aware band's: :meth:`Domain.sync`; a search
tries both), but not which of the marked frame's tiles a cell is, nor how many tiles the frame had on its short side.
Each such hypothesis (the frame's grid and the cell at the picture's corner) fixes every cell's codeword part, sign
and rotation, so a few cells read under all 8 rotations of the square score them all at once: under the right
one, the cells of each codeword part agree. Cells are read by a matched filter to rank every placement
(:mod:`wmark.sync.matched`), then by the decoder to score the best-ranked placements of the best-ranked offsets
(those of the others only if none of them reads). The best are read in full on a canvas of the marked frame, the
picture warped into place and only the tiles it covers decoded (:data:`wmark.domain.domain.FULL_COVERAGE`).

Only frames whose template band kept its full count of tiles along the long side (at most :data:`MAX_TILES`; frames
of at least ``tiles * size / 1.5`` pixels) are searched, with each side of the picture keeping at least
:data:`MIN_KEPT` of the frame's. :func:`hypotheses_bound` counts every hypothesis such a search can score.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from wmark.domain.domain import Band, Domain, decode_tiles
from wmark.domain.grid import TileGrid, transform
from wmark.sync import matched, template
from wmark.sync.template import CANDIDATES, Fit

RANK_CELLS = 24
"""Cells of the received picture read by the matched filter (:mod:`wmark.sync.matched`) under each of the 8 rotations
of the square to rank every place of every candidate offset: under the right one about eight cells of each codeword
part agree. It
ranked rhythm.jpg's right offset first of 8 after the screenshot chain at 768x512 (1.93 against at most 1.40), where
the decoder on 8 cells ranked it fourth."""
RESCORE_CELLS = 24
"""Cells the decoder reads to score again the best-ranked places of the best-ranked offsets (see :func:`search`): after
a crop, a resize to 0.75 and JPEG 75 the tiles read weakly, and 8 cells ranked Volna.jpg's right placement 11th of
972 (its offsets first), 24 cells first by a wide margin (score 2.01 against 1.47)."""
RESCORED_PLACES = 4
"""Best-ranked places of each rescored offset the decoder scores, each of its cells read only under the rotation a
place gives it (:func:`_rescored`), not under all 8: on the validation photos' crops and screenshot chains at 768x512
and 1 MP, 2, 4 and 8 read what every place read (docs/bench.md), 4 in about 60 % of the decodes of every place."""
RESCORED = 3
"""Candidate offsets the decoder scores again on :data:`RESCORE_CELLS` in a search's first turn: the likeliest by the
template's phases and the best ranked others; a second turn, asked for by a reader that read none of the first,
holds this many of the other offsets' best places (:func:`search`).
The likeliest and the best are often half-tile twins; on the validation photos' crops and screenshot chains at
768x512 and 1 MP, 4 read what 3 read (benchmarks/results/sync_stages.json, docs/bench.md)."""
MIN_KEPT = 0.5
"""Least share of each side of the marked frame a received picture is searched for."""
MAX_TILES = 16
"""Template bands of more tiles along the long side are not searched (the p-value's bound counts up to this)."""
SYNC_BANDS = 2
"""Bands a template can be locked to (:meth:`~wmark.domain.domain.Domain.sync_bands`), at most."""


@dataclass(frozen=True)
class Reframe:
    """The marked frame of ``rows x cols`` tiles (of the band its template is locked to) as a received ``height x
    width`` picture shows it: the received pixel centre q (x, y from the top-left corner, in pixels) lies at tile
    coordinates ``matrix @ q + offset``. ``zoom``: the model sizes a tile takes on the canvas (:func:`canvas`), so that
    the finest band keeps its resolution there (2 for an 8-tile band where the finest has 16)."""

    matrix: tuple[tuple[float, float], tuple[float, float]]
    offset: tuple[float, float]
    rows: int
    cols: int
    height: int
    width: int
    zoom: int = 1

    def tiles_at(self, q: torch.Tensor) -> torch.Tensor:
        """Tile coordinates (N, 2) of received points ``q`` (N, 2)."""
        matrix = torch.tensor(self.matrix, dtype=q.dtype, device=q.device)
        return q @ matrix.T + torch.tensor(self.offset, dtype=q.dtype, device=q.device)

    def points_at(self, g: torch.Tensor) -> torch.Tensor:
        """Received points (N, 2) at tile coordinates ``g`` (N, 2)."""
        matrix = torch.tensor(self.matrix, dtype=g.dtype, device=g.device)
        return (g - torch.tensor(self.offset, dtype=g.dtype, device=g.device)) @ torch.linalg.inv(matrix).T

    def pitch(self) -> tuple[float, float]:
        return template.pitch(self.matrix)

    def degrees(self) -> float:
        return template.degrees(self.matrix)

    def frame_shape(self, size: int) -> tuple[int, int]:
        """(height, width) of the marked frame at ``size`` pixels a tile along its long side, at the aspect the
        tiles' pitches show. A frame's grid has whole tiles, so they are seldom square: 768x512 has 16 x 11 of 48 x
        46.5 px. On a canvas of square tiles (1024x704) the other bands' grids fall on other counts (the 8-tile
        band's 5 rows become 6), and such a band reads chance (0.47 of its bits on an 80 % crop of Aqua.jpg at
        768x512, 1.00 at the frame's aspect). Square tiles where that aspect would change this grid's own counts
        (a picture squeezed after marking)."""
        across, along = self.pitch()
        if self.cols >= self.rows:
            shape = (max(1, round(self.rows * size * along / across)), self.cols * size)
        else:
            shape = (self.rows * size, max(1, round(self.cols * size * across / along)))
        grid = TileGrid.over(*shape, max(self.rows, self.cols), size, 1)
        return shape if (grid.rows, grid.cols) == (self.rows, self.cols) else (self.rows * size, self.cols * size)

    def corners(self) -> torch.Tensor:
        """Tile coordinates (4, 2) of the received picture's corners."""
        return self.tiles_at(torch.tensor([[0.0, 0.0], [self.width, 0.0], [0.0, self.height],
                                           [self.width, self.height]], dtype=torch.float64))

    def to_dict(self) -> dict:
        """Where the received picture lies in the marked frame: its box (left, top, right, bottom) as shares of the
        frame's width and height, and the frame's size in received pixels."""
        corners = self.corners()
        left, top = (corners.min(0).values / torch.tensor([self.cols, self.rows])).tolist()
        right, bottom = (corners.max(0).values / torch.tensor([self.cols, self.rows])).tolist()
        pitch = self.pitch()
        return {"box": [round(v, 4) for v in (left, top, right, bottom)],
                "frame_size": [round(self.cols * pitch[0], 1), round(self.rows * pitch[1], 1)]}


def _sample(x: torch.Tensor, reframe: Reframe, cells: torch.Tensor, size: int) -> torch.Tensor:
    """``size x size`` images (B * N, C, size, size) of the tile cells (N, 2; column, row) of frames ``x`` (B, C, H,
    W), blurred first to about ``size`` pixels a tile, so that sampling does not alias."""
    height, width = x.shape[-2:]
    pitch = reframe.pitch()
    shrunk = (max(1, round(height * size / pitch[1])), max(1, round(width * size / pitch[0])))
    if shrunk[0] < height or shrunk[1] < width:
        x = F.interpolate(x, size=shrunk, mode="bilinear", antialias=True, align_corners=False)
    steps = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    inside = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1).view(1, -1, 2)  # (x, y) within a tile
    points = reframe.points_at((cells.double().view(-1, 1, 2) + inside).view(-1, 2))
    normalised = points / torch.tensor([width, height], dtype=torch.float64) * 2 - 1
    grid = normalised.view(1, len(cells) * size, size, 2).expand(len(x), -1, -1, -1).to(x.dtype).to(x.device)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.view(len(x), x.shape[1], len(cells), size, size).transpose(1, 2).flatten(0, 1)


def canvas(x: torch.Tensor, reframe: Reframe, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames, coverage): received frames ``x`` (B, 3, H, W) warped onto the marked frame at ``size`` times the
    reframe's ``zoom`` pixels a tile along its long side and at its aspect (B, 3, *:meth:`Reframe.frame_shape`), and
    where they cover it (B, 1, ...), 1 inside."""
    size = size * reframe.zoom
    columns, rows = torch.meshgrid(torch.arange(reframe.cols), torch.arange(reframe.rows), indexing="xy")
    cells = torch.stack([columns.flatten(), rows.flatten()], 1)
    ones = torch.ones_like(x[:, :1])
    sampled = _sample(torch.cat([x, ones], 1), reframe, cells, size)  # (B * count, 4, size, size)
    grid = TileGrid(reframe.rows, reframe.cols, size, 1)
    joined = grid.join(sampled, reframe.rows * size, reframe.cols * size)
    shape = reframe.frame_shape(size)
    if shape != tuple(joined.shape[-2:]):
        joined = F.interpolate(joined, size=shape, mode="bilinear", align_corners=False)
    return joined[:, :3], joined[:, 3:]


def hypotheses_bound(tiles: int = MAX_TILES) -> int:
    """Hypotheses :func:`search` can score for the template's fits in one picture at most: for each of the
    :data:`SYNC_BANDS` bands the template may be locked to, :data:`~wmark.sync.template.FITS` fits, orientation of
    the frame and count of tiles on its short side, the places the picture's whole cells can take in the frame (as
    many as the frame's tiles on an axis, for a turned picture whose span holds one whole cell), times the
    :data:`~wmark.sync.template.CANDIDATES` offsets a fit leaves."""
    per_orientation = sum(tiles * short for short in range(1, tiles + 1))
    return SYNC_BANDS * template.FITS * CANDIDATES * 2 * per_orientation


SQUEEZE = 2.0
"""Most a received picture's tiles may be longer than wide (or wider than long): an aspect change to a half."""
SPAN_SLACK = 1.25
"""How many times the frame's tiles along its long side a grid may put across a received picture: a picture turned
10 degrees inside its frame (black corners, no expand) spans up to about 1.2 times as many."""


def plausible(domain: Domain, size: int, height: int, width: int) -> Callable[[tuple], bool]:
    """Whether a grid ``matrix`` (see :class:`~wmark.sync.template.Fit`) could be the marked frame's as a ``height x
    width`` picture searched for shows it: across the picture, at most :data:`SPAN_SLACK` times the tiles of a band
    the template may be locked to on both axes, at least :data:`MIN_KEPT` of them on one and a whole tile on the other,
    and tiles at most :data:`SQUEEZE` times as long as wide or as wide as long. Other grids would leave :func:`search` no placement
    or stand for an aspect change it does not claim; among the picture's own pairs of peaks that keep the
    gratings' ratio, they are the commonest."""
    counts = [band.tiles for _, band in domain.sync_bands()]

    def check(matrix) -> bool:
        spans = [abs(a) * width + abs(b) * height for a, b in matrix]
        across, along = template.pitch(matrix)
        return (any(MIN_KEPT * tiles <= max(spans) <= SPAN_SLACK * tiles for tiles in counts) and min(spans) >= 1
                and max(across, along) <= SQUEEZE * min(across, along))
    return check


def _frames(tiles: int) -> list[tuple[int, int]]:
    """(rows, cols) of every grid a frame can have with ``tiles`` tiles of a band along its long side."""
    shapes = [(short, tiles) for short in range(1, tiles + 1)] + [(tiles, short) for short in range(1, tiles)]
    return shapes


def _inner_cells(probe: Reframe) -> torch.Tensor:
    """Cells (N, 2; column, row) whose four corners all lie inside the received picture."""
    corners = probe.corners()
    lo, hi = corners.min(0).values.floor().long().tolist(), corners.max(0).values.ceil().long().tolist()
    columns, rows = torch.meshgrid(torch.arange(lo[0], hi[0]), torch.arange(lo[1], hi[1]), indexing="xy")
    cells = torch.stack([columns.flatten(), rows.flatten()], 1)
    corners = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]])
    points = probe.points_at((cells.view(-1, 1, 2) + corners).view(-1, 2).double()).view(-1, 4, 2)
    inside = ((points[..., 0] >= 0) & (points[..., 0] <= probe.width) & (points[..., 1] >= 0)
              & (points[..., 1] <= probe.height)).all(1)
    return cells[inside]


def _placements(fit: Fit, height: int, width: int, tiles: int):
    """For each pair of candidate offsets of ``fit`` on a ``height x width`` picture: (the probe placing its cells,
    its whole cells (N, 2), and every (rows, cols, shift_x, shift_y) placing them in a frame of ``tiles`` tiles along
    the long side, the picture spanning at least :data:`MIN_KEPT` of the frame's tiles on each axis). The span counts
    the picture's part tiles: a 50 % crop of a frame of 8 x 5 tiles spans 3.5 rows, often 2 whole ones, which a count
    of whole cells took for less than half the frame (5 of 6 val photos placed at 768x512 before, 2 of 6 with the
    template on 8 tiles, benchmarks/results/template_pitch.json)."""
    for offset in fit.offsets:
        probe = Reframe(fit.matrix, offset, 1, 1, height, width)
        inner = _inner_cells(probe)
        if not len(inner):
            continue
        low, high = inner.min(0).values.tolist(), inner.max(0).values.tolist()
        corners = probe.corners()
        span_x, span_y = (corners.max(0).values - corners.min(0).values).tolist()
        places = [(rows, cols, shift_x, shift_y) for rows, cols in _frames(tiles)
                  if span_x >= MIN_KEPT * cols and span_y >= MIN_KEPT * rows
                  for shift_y in range(-low[1], rows - high[1]) for shift_x in range(-low[0], cols - high[0])]
        yield probe, inner, places


IN_PLACE = 0.02
"""Most a fit's pitch may differ (relatively, on each axis) from the template grid of the whole received picture for
:func:`in_place` to hold."""


def in_place(domain: Domain, size: int, height: int, width: int, fit: Fit) -> bool:
    """Whether ``fit`` is the template grid a ``height x width`` frame is marked with (:meth:`Domain.sync`), only
    turned: a picture turned where it lies, its size kept (Pillow's ``rotate`` without ``expand``). The frame's own
    grid turned back by the fit's angle then reads it in one decode, with no placement to score (5 degrees at
    768x512: about 1.5 s against 7.7 s through :func:`search`)."""
    _, grid, _ = domain.sync(height, width, size)
    across, along = template.pitch(fit.matrix)
    return abs(across * grid.cols / width - 1) <= IN_PLACE and abs(along * grid.rows / height - 1) <= IN_PLACE


def hypotheses(domain: Domain, size: int, height: int, width: int, fit: Fit) -> int:
    """How many hypotheses :func:`search` scores for a ``height x width`` picture whose template gave ``fit``, known
    before any decoding (so a p-value can count them); at most :func:`hypotheses_bound`."""
    return sum(len(places) for _, band in _searched(domain)
               for _, inner, places in _placements(fit, height, width, band.tiles) if len(inner) >= domain.classes)


def _searched(domain: Domain) -> list[tuple[int, Band]]:
    """(salt, band) of the bands the template may be locked to that a search places (:data:`MAX_TILES`)."""
    return [(salt, band) for salt, band in domain.sync_bands() if band.tiles <= MAX_TILES]


class _Offset(NamedTuple):
    """A candidate offset of a fit: its probe (:func:`_placements`), whole cells (N, 2), places, and each place's
    score (P,) as ranked."""

    probe: Reframe
    inner: torch.Tensor
    places: list
    scores: torch.Tensor


def _cells(inner: torch.Tensor, cells: int) -> torch.Tensor:
    """``cells`` of the whole cells ``inner`` (N, 2), spread over the picture."""
    return inner[torch.linspace(0, len(inner) - 1, min(cells, len(inner))).round().long()]


def _layout(chosen: torch.Tensor, places: list, salt: int, size: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(variants, parts), each (P, N): the variant (see :meth:`TileGrid.variants`) and the codeword part of the tile
    each of the ``chosen`` cells (N, 2) is under each of ``places`` (P), on the grid of the band of ``salt``."""
    variants, parts = [], []
    for (rows, cols), group in groupby(places, key=lambda place: place[:2]):
        grid = TileGrid(rows, cols, size, classes)
        shifts = torch.tensor([place[2:] for place in group]).view(-1, 2)
        index = (chosen[:, 1] + shifts[:, 1:]) * cols + chosen[:, 0] + shifts[:, :1]
        variants.append(grid.variants(salt)[index])
        parts.append(grid.tile_classes()[index])
    return torch.cat(variants), torch.cat(parts)


def _scores(logits: torch.Tensor, variants: torch.Tensor, parts: torch.Tensor, classes: int) -> torch.Tensor:
    """How strongly cells' logits (8, N, bits; each cell read under the 8 rotations of the square) agree within
    their codeword parts under each place (P,) whose ``variants`` and ``parts`` (P, N) :func:`_layout` gives: the
    mean over parts and bits of the squared sum of a part's logits over its number of cells. Random signs (a wrong
    hypothesis) leave the cells' mean squared logit; agreeing cells add their number times the squared mean. Misread
    tiles may agree too (a reading a few native pixels off is as consistent, only weaker), so strength counts, not
    agreement alone."""
    read = logits[variants % 8, torch.arange(variants.shape[1])] * (1 - 2 * (variants // 8)).unsqueeze(-1)
    members = F.one_hot(parts, classes).to(read.dtype)  # (P, N, parts)
    sums, counts = members.transpose(1, 2) @ read, members.sum(1)
    return (sums.pow(2).mean(2) / counts.clamp(min=1)).sum(1) / (counts > 0).sum(1).clamp(min=1)


def _rank(domain: Domain, model, x: torch.Tensor, probe: Reframe, inner: torch.Tensor, places: list,
          salt: int) -> torch.Tensor:
    """Scores (P,) of ``places`` for the probe's whole cells ``inner``, :data:`RANK_CELLS` of them read under all 8
    rotations of the square: in a ``patterns`` domain by the matched filter (:mod:`wmark.sync.matched`), each cell's
    logits scaled to the same mean square over its rotations. Unscaled, a textured cell's large correlations outvote
    the others: the right offsets of 50 % crops of ColdRipple.jpg and Volna.jpg at 768x512 then ranked below wrong
    ones. A domain without patterns embeds the model's residual of each tile's own picture, which no fixed filter
    matches, so its decoder ranks."""
    chosen = _cells(inner, RANK_CELLS)
    images = _sample(x, probe, chosen, model.size)
    if domain.patterns:
        logits = matched.turned_logits(model, images).cpu()
        logits = logits / logits.pow(2).mean((0, 2), keepdim=True).sqrt().clamp(min=1e-12)
    else:
        logits = _decoded(model, images, torch.ones(8, len(chosen), dtype=torch.bool))
    return _scores(logits, *_layout(chosen, places, salt, model.size, domain.classes), domain.classes)


def _decoded(model, images: torch.Tensor, needed: torch.Tensor) -> torch.Tensor:
    """Decoder logits (8, N, bits) of cell ``images`` (N, 3, size, size) turned back by each rotation of the square
    where ``needed`` (8, N) holds, 0 elsewhere."""
    rotated = torch.cat([transform(images[needed[d].to(images.device)], torch.full((int(needed[d].sum()),), d),
                                   inverse=True) for d in range(8)])
    logits = torch.zeros(8, len(images), model.message_bits)
    logits[needed] = decode_tiles(model, rotated).float().cpu()
    return logits


def _rescored(domain: Domain, model, x: torch.Tensor, offset: _Offset, salt: int, zoom: int) -> tuple[float, Reframe]:
    """The best (score, reframe) of an offset's :data:`RESCORED_PLACES` best-ranked places, scored by the decoder on
    :data:`RESCORE_CELLS` cells, each read only under the rotations those places give it."""
    top = sorted(torch.sort(offset.scores, descending=True, stable=True).indices[:RESCORED_PLACES].tolist())
    places = [offset.places[i] for i in top]
    chosen = _cells(offset.inner, RESCORE_CELLS)
    variants, parts = _layout(chosen, places, salt, model.size, domain.classes)
    needed = torch.zeros(8, len(chosen), dtype=torch.bool)
    needed[variants % 8, torch.arange(len(chosen))] = True
    logits = _decoded(model, _sample(x, offset.probe, chosen, model.size), needed)
    scores = _scores(logits, variants, parts, domain.classes)
    rows, cols, shift_x, shift_y = places[int(scores.argmax())]
    where = (offset.probe.offset[0] + shift_x, offset.probe.offset[1] + shift_y)
    probe = offset.probe
    return float(scores.max()), Reframe(probe.matrix, where, rows, cols, probe.height, probe.width, zoom)


def _ranked(domain: Domain, model, x: torch.Tensor, fit: Fit) -> list[tuple[int, int, list[_Offset]]]:
    """For each band a search places: (salt, zoom, offsets), each candidate offset of ``fit`` that leaves a place,
    its places ranked (:func:`_rank`); the likeliest offset by the template's phases first."""
    height, width = x.shape[-2:]
    finest, bands = domain.sync_bands()[0][1].tiles, []
    for salt, band in _searched(domain):
        zoom = max(1, round(finest / band.tiles))
        offsets = [_Offset(probe, inner, places, _rank(domain, model, x, probe, inner, places, salt))
                   for probe, inner, places in _placements(fit, height, width, band.tiles)
                   if len(inner) >= domain.classes and places]
        bands.append((salt, zoom, offsets))
    return bands


@torch.no_grad()
def promise(domain: Domain, model, x: torch.Tensor, fit: Fit) -> float:
    """The best score the matched filter gives a place of ``fit`` on :data:`RANK_CELLS` cells, over its candidate
    offsets and the bands a search places (0 where none can be placed): the ranking :func:`search` starts with. A
    mirror's fit is the picture's own, as strong, and only the mark tells them apart: on a 50 % crop of Storm.jpg at
    768x512 the right flip's best placement scored 16.5, the other's 1.4."""
    return max((float(offset.scores.max()) for _, _, offsets in _ranked(domain, model, x, fit) for offset in offsets),
               default=0.0)


@torch.no_grad()
def search(domain: Domain, model, x: torch.Tensor, fit: Fit) -> Iterator[list[tuple[float, Reframe]]]:
    """The hypotheses (score, reframe) worth reading for frame ``x`` (1, 3, H, W) whose template gave ``fit``, in two
    turns, each a list, the best-scoring first; both empty when the picture holds too few whole cells or no
    hypothesis fits.
    Every candidate offset's places are ranked by the matched filter on :data:`RANK_CELLS` cells. The first turn holds
    the offset the template's phases make likeliest and the best ranked others (:data:`RESCORED` in all), each with
    the best of its best-ranked places as the decoder scores them (:func:`_rescored`): the likeliest and the best are
    often the half-tile twins the diagonals cannot tell apart (:func:`wmark.sync.template.find`), and a twin's cells,
    each straddling four tiles, can outscore the truth (Cascade.jpg cropped to 90 %, resized to 0.75 and saved at JPEG
    75: 0.844 against 0.814), so both are read. The second, scored only when asked for, holds the best
    :data:`RESCORED` of every other offset's, so scored. After the screenshot chain the filter's ranking is weak:
    Fossa-by-Jasper-Roks.jpg at 768x512 ranked its right offset fifth of 8 (1.28 against 1.39), its right place
    second there. Each band the template may be locked to is placed so; a turn holds the hypotheses of all of them."""
    first, rest = [], []
    for salt, zoom, offsets in _ranked(domain, model, x, fit):
        if offsets:
            likeliest, *others = offsets
            others.sort(key=lambda offset: -float(offset.scores.max()))
            first += [(offset, salt, zoom) for offset in [likeliest] + others[:RESCORED - 1]]
            rest += [(offset, salt, zoom) for offset in others[RESCORED - 1:]]
    for turn, read in ((first, len(first)), (rest, RESCORED)):
        yield sorted((_rescored(domain, model, x, offset, salt, zoom) for offset, salt, zoom in turn),
                     key=lambda entry: -entry[0])[:read]
