"""A synchronisation template: four faint luma gratings locked to the finest tile grid, which tell an extractor
the scale, aspect, rotation and offset of a crop (a DFT template, Pereira & Pun 2000, "Robust template matching
for affine resistant image watermarks"; its phase read for the offset, as in Kutter 1998).

The gratings run along the grid's columns and rows at :data:`HARMONIC` and ``HARMONIC + 1`` cycles per tile. A
received image shows them as two pairs of peaks in its spectrum, whatever was cut off: each pair's spacing is one
cycle per tile, so the peaks give the tile pitch and the grid's orientation on each axis, and the difference of a
pair's phases gives where the tile boundaries fall (the higher harmonic's phase refines it to a fraction of a
pixel). Which tile of the marked frame a cell is remains open; :mod:`wmark.sync.reframe` tries those hypotheses.

The gratings are periodic, so a pirate who knows the scheme could estimate and remove them; they only carry
geometry. They add 4 sinusoids of amplitude ``amplitude`` (8-bit levels before the JND shaping) to the residual.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from wmark.perception.jnd import luma

HARMONIC = 16
"""Cycles per tile of the lower grating on each axis: 4 native pixels of a 64 px model, about 8 pixels on a 2 MP
photo, coarse enough to live through JPEG 75 after a resize to 0.75 and fine enough to stay unseen."""
PHASES = (0.3, 1.7, 2.9, 4.4)
"""Phases (radians) of the gratings: columns at HARMONIC and HARMONIC + 1, then rows at both."""
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
PAIRS = 12
"""The strongest pairs on each axis that are refined and checked."""
MAX_TILT = 15.0
"""Degrees from its axis a grating's peak may lie (the search covers rotations up to 10 degrees)."""
ZOOM_BINS, ZOOM_STEPS = 0.75, 13
"""Peaks are refined by evaluating the spectrum on a ``ZOOM_STEPS`` grid within ``ZOOM_BINS`` bins of them."""


def pattern(height: int, width: int, rows: int, cols: int) -> torch.Tensor:
    """The template (1, 1, height, width) of a frame whose finest grid is ``rows x cols`` tiles, peak amplitude
    up to 4; pixel centres sit at grid coordinate (index + 0.5) / pitch, as :class:`Fit` reads them."""
    x = (torch.arange(width, dtype=torch.float64) + 0.5) * (cols / width)
    y = (torch.arange(height, dtype=torch.float64) + 0.5) * (rows / height)
    along_x = sum(torch.cos(2 * math.pi * k * x + p) for k, p in zip((HARMONIC, HARMONIC + 1), PHASES[:2]))
    along_y = sum(torch.cos(2 * math.pi * k * y + p) for k, p in zip((HARMONIC, HARMONIC + 1), PHASES[2:]))
    return (along_y.view(-1, 1) + along_x.view(1, -1)).float().view(1, 1, height, width)


@dataclass(frozen=True)
class Fit:
    """The marked grid as a received image shows it: a received pixel centre q (x, y from the top-left corner, in
    pixels) lies at grid coordinates ``matrix @ q + offset``, in tiles, up to a whole number of tiles on each
    axis; ``offsets`` holds each axis's :data:`OFFSETS` candidate offsets, the likeliest first. ``strength``: the weakest of the four peaks, in whitened magnitude."""

    matrix: tuple[tuple[float, float], tuple[float, float]]
    offsets: tuple[tuple[float, ...], tuple[float, ...]]
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
    """The strongest pairs (score, lower, upper) along the columns and along the rows, every bin of the whitened
    spectrum of a ``shape`` frame taken as a lower peak: its partner is the largest bin within one of
    (HARMONIC + 1) / HARMONIC times its frequency; the stronger of the two must stand :data:`MIN_PEAK` high, the
    weaker :data:`MIN_PARTNER` (its score), and the lower lie within :data:`MAX_TILT` degrees of the axis. Every
    bin is tried at once, so an artwork's own strong peaks, which seldom keep the ratio, cannot crowd the gratings
    out. Frequencies (fx, fy) are in cycles per pixel; a row pair points down."""
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
    for sector in (angle.abs() <= MAX_TILT, (angle.abs() - 90).abs() <= MAX_TILT):
        top = score[sector].topk(min(PAIRS, int(sector.sum()))).indices
        pairs = []
        for a, b, value in zip(fx[sector][top].tolist(), fy[sector][top].tolist(), score[sector][top].tolist()):
            if b < 0 and len(found):
                a, b = -a, -b  # the row gratings point down
            pairs.append((value, (a, b), (a * ratio, b * ratio)))
        found.append(pairs)
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


def _axis(z: torch.Tensor, a: tuple[float, float], b: tuple[float, float],
          phases: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, ...]]:
    """(grid row of the matrix, offsets) of one axis from its pair of peaks: the frequency of one cycle per tile (a
    least-squares fit of both, refined), and where the tiles start: the difference of the two phases gives it
    to a cycle of the lower grating, whose phase refines it. The picture's own content at those frequencies moves
    the difference by up to 0.8 of a cycle after a resize and JPEG 75 (measured on Storm.jpg), so the
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


OFFSETS = 3
"""Candidate offsets kept on each axis: the lower grating's cycles nearest to what the phase difference says."""
PERPENDICULAR = 5.0
"""Degrees from a right angle the two axes' gratings may make (a rotation or aspect change keeps them square)."""


def find(x: torch.Tensor, plausible: Callable[[tuple], bool] | None = None) -> Fit | None:
    """The template in frame ``x`` (1, 3, H, W), or None when its spectrum shows no pair of peaks on each axis
    that stand at right angles (and, with ``plausible``, make a grid ``matrix`` it accepts: see :class:`Fit`)."""
    z = _prepared(x)
    magnitude = torch.fft.rfft2(z).abs()
    white = _whitened(magnitude)
    pairs_x, pairs_y = _pairs(white, z.shape)
    best = None
    for score_x, lower_x, upper_x in _harmonics(magnitude, z.shape, pairs_x):
        for score_y, lower_y, upper_y in _harmonics(magnitude, z.shape, pairs_y):
            between = math.degrees(math.atan2(lower_y[1], lower_y[0]) - math.atan2(lower_x[1], lower_x[0]))
            rough = tuple(tuple(f / HARMONIC for f in lower) for lower in (lower_x, lower_y))
            if (abs(between - 90) <= PERPENDICULAR and (best is None or min(score_x, score_y) > best[0])
                    and (plausible is None or plausible(rough))):
                best = (min(score_x, score_y), (lower_x, upper_x), (lower_y, upper_y))
    if best is None:
        return None
    strength, pair_x, pair_y = best
    row_x, offsets_x = _axis(z, *pair_x, PHASES[:2])
    row_y, offsets_y = _axis(z, *pair_y, PHASES[2:])
    return Fit((row_x, row_y), (offsets_x, offsets_y), strength)
