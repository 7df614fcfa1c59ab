"""Finding the synchronisation template (:mod:`wmark.domain.template`: four faint luma gratings along the finest
tile grid's two diagonals) in a received image, which tells an extractor the scale, aspect, rotation and offset of a
crop (a DFT template, Pereira & Pun 2000; its phase read for the offset, as in Kutter 1998).

A received image shows the gratings as two pairs of peaks in its spectrum, whatever was cut off: each pair's spacing
is one cycle per tile along its diagonal, and the two diagonals' sum and difference give the tile pitch and the
grid's orientation on each axis; a pair's phases give where the tile boundaries fall (the higher harmonic's phase
refines it to a fraction of a pixel), up to half a tile along both axes at once. Which tile of the marked frame a
cell is remains open; :mod:`wmark.sync.reframe` tries those hypotheses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from wmark.domain.template import HARMONIC, PHASES
from wmark.perception.jnd import luma

HIGH_PASS = 9
"""Box size (pixels) whose mean is subtracted before the spectrum: it removes the picture's low frequencies. The
RMS of what is left over the same box then divides it."""
LOCAL_RMS = 0.3
"""8-bit levels added to the local RMS before dividing by it. Dividing makes textured areas, whose own energy near
the gratings' frequencies would swamp them in the picture's spectrum, count no more than flat ones, where the
gratings stand clear (local contrast normalisation): on half-area crops of the val photos the gratings' whitened
peaks rose from 2-4 to 4-9 on the flat and grainy ones (Aqua, ColdRipple, OneStandsOut, FallenLeaf)."""
WHITENING = 15
"""Bins around a frequency whose mean magnitude a peak is measured against."""
MIN_PEAK = 2.5
"""Whitened magnitude the stronger peak of a pair needs (the mean bin is 1): lower ones are noise or the picture."""
MIN_PARTNER = 2.0
"""Whitened magnitude the weaker peak of a pair needs."""
HARMONIC_BINS = 0.6
"""How far (in bins) a pair's refined upper peak may lie from (HARMONIC + 1) / HARMONIC times its lower one: the
gratings' exact ratio, which pairs of the picture's own peaks seldom keep. After a crop, a resize to 0.75 and JPEG
75 the gratings' own pairs missed it by 0.43-0.53 bins on three crops of two val photos (Cascade, OneStandsOut); with
:func:`wmark.sync.reframe.plausible`, 5 of 100 unmarked pictures (val and train photos, whole and cropped and
resized) showed a pair on each axis within 0.6 bins, 1 within 0.35."""
PAIRS = 40
"""The strongest pairs along each diagonal that are refined and checked: on a 50 % crop of OneStandsOut.jpg, a dark
photo whose JND map keeps the gratings faint, the rising one scored 2.5, below the 12 strongest of the picture's
own."""
SPREAD = 30.0
"""Degrees from 45 a diagonal's peak may lie: tiles up to twice as long as wide (:data:`wmark.sync.reframe.SQUEEZE`)
put it 18.4 degrees off, and the search covers rotations up to 10 degrees."""
MAX_TURN = 15.0
"""Degrees a grid may be turned (the search covers rotations up to 10 degrees)."""
ZOOM_BINS, ZOOM_STEPS = 0.75, 13
"""Peaks are refined by evaluating the spectrum on a ``ZOOM_STEPS`` grid within ``ZOOM_BINS`` bins of them."""


@dataclass(frozen=True)
class Fit:
    """The marked grid as a received image shows it: a received pixel centre q (x, y from the top-left corner, in
    pixels) lies at grid coordinates ``matrix @ q + offset``, in tiles, up to a whole number of tiles on each
    axis; ``offsets`` holds the candidate offsets (x, y), the likeliest first (see :func:`find`). ``strength``: the weakest of the four peaks, in whitened magnitude."""

    matrix: tuple[tuple[float, float], tuple[float, float]]
    offsets: tuple[tuple[float, float], ...]
    strength: float

    def pitch(self) -> tuple[float, float]:
        return pitch(self.matrix)

    def degrees(self) -> float:
        return degrees(self.matrix)


def pitch(matrix) -> tuple[float, float]:
    """Received pixels per tile along the grid's columns and rows, for a grid ``matrix`` (see :class:`Fit`)."""
    return tuple(1 / math.hypot(*row) for row in matrix)


def degrees(matrix) -> float:
    """How far a grid ``matrix`` (see :class:`Fit`) is turned anticlockwise, as Pillow's ``rotate`` turns a
    picture."""
    (a, b), _ = matrix
    return -math.degrees(math.atan2(b, a))  # y points down: a turn to the left tilts the columns' axis up


def _box_mean(y: torch.Tensor, size: int) -> torch.Tensor:
    """The mean of each ``size x size`` box of ``y`` (B, C, H, W) clipped to the frame, as two 1-D passes (a box
    is separable, also where it is clipped): several times faster on a CPU than one 2-D pooling."""
    y = F.avg_pool2d(y, (size, 1), 1, (size // 2, 0), count_include_pad=False)
    return F.avg_pool2d(y, (1, size), 1, (0, size // 2), count_include_pad=False)


def _prepared(x: torch.Tensor) -> torch.Tensor:
    """The luma of one frame (1, 3, H, W) in 8-bit levels, its low frequencies removed, each pixel divided by the
    local RMS around it (:data:`LOCAL_RMS`), and a Hann window applied: (H, W)."""
    y = luma(x[:1].float(), 255)
    y = y - _box_mean(y, HIGH_PASS)
    rms = _box_mean(y * y, HIGH_PASS).sqrt_()
    y = (y / rms.add_(LOCAL_RMS))[0, 0]
    height, width = y.shape
    window = torch.hann_window(height, periodic=False).view(-1, 1) * torch.hann_window(width, periodic=False)
    return y * window.to(y.device)


def _whitened(magnitude: torch.Tensor) -> torch.Tensor:
    """A spectrum's ``magnitude`` (rfft2 layout) over its local mean: about 1 where nothing stands out."""
    return (magnitude / _box_mean(magnitude[None, None], WHITENING).clamp(min=1e-12))[0, 0]


def _interpolated(magnitude: torch.Tensor, shape: tuple[int, int], f: tuple[float, float]) -> tuple[float, float]:
    """The frequency of the largest bin within a bin of ``f``, moved to the vertex of a parabola through the log
    magnitudes of its neighbours on each axis (a tenth of a bin or better for a Hann-windowed sinusoid)."""
    height, width = shape
    sign = -1.0 if f[0] < 0 else 1.0  # a real picture's spectrum: the other half-plane mirrors this one
    fx, fy = sign * f[0], sign * f[1]
    col, row = round(fx * width), round(fy * height)
    rows = [(row + d) % height for d in (-1, 0, 1)]
    cols = list(range(max(0, col - 1), min(magnitude.shape[1], col + 2)))
    patch = magnitude[rows][:, cols]
    r, c = divmod(int(patch.argmax()), len(cols))
    row, col = row + r - 1, cols[c]

    def vertex(before: float, at: float, after: float) -> float:
        before, at, after = (math.log(max(v, 1e-12)) for v in (before, at, after))
        curvature = before - 2 * at + after
        return 0.0 if curvature >= 0 else max(-0.5, min(0.5, 0.5 * (before - after) / curvature))

    at = float(magnitude[row % height, col])
    dy = vertex(float(magnitude[(row - 1) % height, col]), at, float(magnitude[(row + 1) % height, col]))
    dx = (vertex(float(magnitude[row % height, col - 1]), at, float(magnitude[row % height, col + 1]))
          if 0 < col < magnitude.shape[1] - 1 else 0.0)
    return sign * (col + dx) / width, sign * (row + dy) / height


def _pairs(white: torch.Tensor, shape: tuple[int, int]) -> tuple[list, list]:
    """The strongest pairs (score, lower, upper) along the falling and along the rising diagonal, every bin of the
    whitened spectrum of a ``shape`` frame taken as a lower peak: its partner is the largest bin within one of
    (HARMONIC + 1) / HARMONIC times its frequency; the stronger of the two must stand :data:`MIN_PEAK` high, the
    weaker :data:`MIN_PARTNER` (its score), and the lower lie within :data:`SPREAD` degrees of the diagonal. Every
    bin is tried at once, so an artwork's own strong peaks, which seldom keep the ratio, cannot crowd the gratings
    out. Frequencies (fx, fy) are in cycles per pixel, fx >= 0 (y points down: a falling pair has fy > 0)."""
    height, width = shape
    ratio = (HARMONIC + 1) / HARMONIC
    near = F.max_pool2d(white[None, None], 3, 1, 1)[0, 0]
    fy = torch.fft.fftfreq(height, device=white.device).view(-1, 1).expand_as(white)
    fx = torch.fft.rfftfreq(width, device=white.device).view(1, -1).expand_as(white)
    cols, rows = (fx * ratio * width).round().long(), (fy * ratio * height).round().long() % height
    reach = (cols < white.shape[1]) & (fy.abs() * ratio < 0.49)
    partner = torch.where(reach, near[rows, cols.clamp(max=white.shape[1] - 1)], torch.zeros_like(white))
    score = torch.minimum(white, partner)
    radius = torch.hypot(fx, fy)
    keep = ((radius > 4 / min(height, width)) & (radius * ratio < 0.49) & (score >= MIN_PARTNER)
            & (torch.maximum(white, partner) >= MIN_PEAK) & (score == F.max_pool2d(score[None, None], 5, 1, 2)[0, 0]))
    fx, fy, score = fx[keep], fy[keep], score[keep]
    angle = torch.rad2deg(torch.atan2(fy, fx))
    found = []
    for sector in ((angle - 45).abs() <= SPREAD, (angle + 45).abs() <= SPREAD):
        top = score[sector].topk(min(PAIRS, int(sector.sum()))).indices
        found.append([(value, (a, b), (a * ratio, b * ratio)) for a, b, value in
                      zip(fx[sector][top].tolist(), fy[sector][top].tolist(), score[sector][top].tolist())])
    return found[0], found[1]


def _spectrum_at(z: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
    """The spectrum of ``z`` (H, W) at every (fy[i], fx[j]) (len(fy), len(fx)), pixel centres at index + 0.5: a
    separable sum, so a small grid of frequencies costs a few passes over the image."""
    height, width = z.shape
    xs = torch.arange(width, dtype=torch.float64, device=z.device) + 0.5
    ys = torch.arange(height, dtype=torch.float64, device=z.device) + 0.5
    ex = torch.exp(-2j * math.pi * xs.view(-1, 1) * fx.view(1, -1).double()).to(torch.complex64)
    ey = torch.exp(-2j * math.pi * fy.view(-1, 1).double() * ys.view(1, -1)).to(torch.complex64)
    return ey @ (z.to(torch.complex64) @ ex)


def _refined(z: torch.Tensor, fx: float, fy: float) -> tuple[float, float]:
    """A peak's frequency to a fraction of a bin: the best of a small grid around it."""
    height, width = z.shape
    steps = torch.linspace(-ZOOM_BINS, ZOOM_BINS, ZOOM_STEPS, dtype=torch.float64)
    gx, gy = fx + steps / width, fy + steps / height
    values = _spectrum_at(z, gx, gy).abs()
    row, col = divmod(int(values.argmax()), ZOOM_STEPS)
    return float(gx[col]), float(gy[row])


def _phase(z: torch.Tensor, f: tuple[float, float]) -> float:
    return float(torch.angle(_spectrum_at(z, torch.tensor([f[0]]), torch.tensor([f[1]]))[0, 0]))


def _harmonics(magnitude: torch.Tensor, shape: tuple[int, int],
               pairs: list) -> list[tuple[float, tuple[float, float], tuple[float, float]]]:
    """The pairs (score, lower, upper) whose interpolated peaks keep the gratings' ratio to :data:`HARMONIC_BINS`."""
    height, width = shape
    ratio, kept = (HARMONIC + 1) / HARMONIC, []
    for score, lower, upper in pairs:
        a, b = _interpolated(magnitude, shape, lower), _interpolated(magnitude, shape, upper)
        if math.hypot((b[0] - ratio * a[0]) * width, (b[1] - ratio * a[1]) * height) <= HARMONIC_BINS:
            kept.append((score, a, b))
    return kept


def _diagonal(z: torch.Tensor, a: tuple[float, float], b: tuple[float, float],
              phases: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, ...]]:
    """(frequency, offsets) of one diagonal from its pair of peaks: the frequency of one cycle per tile along it (a
    least-squares fit of both peaks, refined), and where its cycles start: the difference of the two phases gives
    it to a cycle of the lower grating, whose phase refines it. The picture's own content at those frequencies
    moves the difference by up to 0.8 of a cycle after a resize and JPEG 75 (measured on Storm.jpg), so the
    :data:`OFFSETS` candidates nearest to it are kept."""
    m = HARMONIC
    a, b = _refined(z, *a), _refined(z, *b)
    unit = tuple((m * a[i] + (m + 1) * b[i]) / (m * m + (m + 1) ** 2) for i in range(2))
    lower_phase = (_phase(z, (m * unit[0], m * unit[1])) - phases[0]) / (2 * math.pi)
    upper_phase = (_phase(z, ((m + 1) * unit[0], (m + 1) * unit[1])) - phases[1]) / (2 * math.pi)
    coarse = (upper_phase - lower_phase) % 1.0
    distance = lambda c: (c - coarse + 0.5) % 1.0 - 0.5  # noqa: E731  (signed, around the circle)
    candidates = sorted((((lower_phase + j) / m) % 1.0 for j in range(m)), key=lambda c: abs(distance(c)))
    return unit, tuple(candidates[:OFFSETS])


def _matrix(falling: tuple[float, float], rising: tuple[float, float]) -> tuple[tuple[float, float], ...]:
    """The grid's matrix (see :class:`Fit`) from one cycle per tile along each diagonal: x + y and x - y."""
    return tuple(tuple((f + sign * r) / 2 for f, r in zip(falling, rising)) for sign in (1, -1))


def _offsets(falling: tuple[float, ...], rising: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """Offsets (x, y) of the grid, the likeliest first, from the candidates for x + y (``falling``) and x - y
    (``rising``), each known up to a whole tile: so x and y are known up to half a tile along both at once, and
    each pair of candidates gives two."""
    found = []
    for i, j in sorted(((i, j) for i in range(len(falling)) for j in range(len(rising))), key=sum):
        x, y = (falling[i] + rising[j]) / 2, (falling[i] - rising[j]) / 2
        found += [((x + half) % 1.0, (y + half) % 1.0) for half in (0.0, 0.5)]
    return tuple(found)


OFFSETS = 2
"""Candidate offsets kept along each diagonal: the lower grating's cycles nearest to what the phase difference
says."""
CANDIDATES = 2 * OFFSETS ** 2
"""Offsets (x, y) a :class:`Fit` holds (:func:`_offsets`)."""
PERPENDICULAR = 5.0
"""Degrees from a right angle the grid's two axes may make (a rotation or aspect change keeps them square)."""


FITS = 3
"""Grids :func:`find` returns at most. A picture with its own lattice can chain its peaks to the gratings': on
grid-l.jpg (a 42.4 px lattice) its 4th harmonic sits 11/10 above the upper grating, so the pairs on both diagonals
read 145.7, 160, 176 and 193 bins, each 11/10 of the one before, and the pair (176, 193), the image's peak the
stronger, outscored the gratings' own (160, 176). Each link of such a chain makes a grid, 10/11 or 11/10 of the
true pitch: at 1000x1000 marked with the middle band and turned 5 degrees, the true grid (62.5 px) came third,
after 56.8 and 68.8 px. On the 10 validation photos unmarked, at 768x512 and about 1 MP, no frame showed more
than 2 plausible grids, so the third costs nothing there."""
DISTINCT = 0.02
"""Least relative difference of pitch (or of angle, in radians) between the grids :func:`find` returns."""


def find(x: torch.Tensor, plausible: Callable[[tuple], bool] | None = None) -> list[Fit]:
    """The template in frame ``x`` (1, 3, H, W): up to :data:`FITS` distinct grids, the strongest first, each from
    a pair of peaks along each diagonal that make a grid with square corners (and, with ``plausible``, a grid
    ``matrix`` it accepts: see :class:`Fit`); none when no pairs do."""
    z = _prepared(x)
    magnitude = torch.fft.rfft2(z).abs()
    falling, rising = (_harmonics(magnitude, z.shape, pairs) for pairs in _pairs(_whitened(magnitude), z.shape))
    combined = []
    for score_f, lower_f, upper_f in falling:
        for score_r, lower_r, upper_r in rising:
            rough = _matrix(*(tuple(f / HARMONIC for f in lower) for lower in (lower_f, lower_r)))
            between = math.degrees(math.atan2(rough[1][1], rough[1][0]) - math.atan2(rough[0][1], rough[0][0]))
            if (abs(between - 90) <= PERPENDICULAR and abs(degrees(rough)) <= MAX_TURN
                    and (plausible is None or plausible(rough))):
                combined.append((min(score_f, score_r), rough, (lower_f, upper_f), (lower_r, upper_r)))
    chosen = []
    for strength, rough, pair_f, pair_r in sorted(combined, key=lambda entry: -entry[0]):
        if len(chosen) < FITS and all(_distinct(rough, other[1]) for other in chosen):
            chosen.append((strength, rough, pair_f, pair_r))
    fits = []
    for strength, _, pair_f, pair_r in chosen:
        unit_f, offsets_f = _diagonal(z, *pair_f, PHASES[:2])
        unit_r, offsets_r = _diagonal(z, *pair_r, PHASES[2:])
        fits.append(Fit(_matrix(unit_f, unit_r), _offsets(offsets_f, offsets_r), strength))
    return fits


def _distinct(matrix, other) -> bool:
    """Whether two grids' pitches or angles differ by :data:`DISTINCT` or more."""
    return (any(abs(a / b - 1) >= DISTINCT for a, b in zip(pitch(matrix), pitch(other)))
            or abs(math.radians(degrees(matrix) - degrees(other))) >= DISTINCT)
