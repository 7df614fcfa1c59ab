"""LDR FLIP (Andersson et al., "FLIP: A Difference Evaluator for Alternating Images", HPG 2020) in torch:
differentiable, batched, on the device of its inputs, so a training loss can be the visibility the project
reports (:mod:`wmark.perception.flip` measures it with the reference ``flip-evaluator`` package).

Written from the paper's equations and constants: the images go to the YCxCz opponent space, are filtered by
the three channels' contrast sensitivity functions (sums of Gaussians, at 67 pixels per degree), turned into
Hunt-adjusted L*a*b* and compared by the HyAB distance; the colour error is compressed and remapped
(q_c = 0.7, p_c = 0.4, p_t = 0.95), and raised to the power 1 - feature error, the larger difference of edge
and point strengths (Gaussian derivatives of sigma 0.5 x 0.082 degrees, q_f = 0.5). Edges are replicated.
``tests/test_flip_torch.py`` holds it to the reference on real photos.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PIXELS_PER_DEGREE = 67.0
_WHITE = (0.950428545, 1.0, 1.088900371)  # D65, Y = 1
# Contrast sensitivity per opponent channel: (a1, b1, a2, b2) of a1 sqrt(pi / b1) exp(-pi^2 x^2 / b1) + a2 ...
_CSF = ((1.0, 0.0047, 0.0, 1e-5), (1.0, 0.0053, 0.0, 1e-5), (34.1, 0.04, 13.5, 0.025))
_QC, _PC, _PT, _QF = 0.7, 0.4, 0.95, 0.5
_FEATURE_WIDTH = 0.082  # degrees
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))


def _linear(srgb: torch.Tensor) -> torch.Tensor:
    return torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def _matrix(rows, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, x)


def _xyz_to_ycxcz(xyz: torch.Tensor) -> torch.Tensor:
    white = _matrix(_WHITE, xyz).view(1, 3, 1, 1)
    x, y, z = (xyz / white).unbind(1)
    return torch.stack([116 * y - 16, 500 * (x - y), 200 * (y - z)], 1)


def _ycxcz_to_xyz(ycc: torch.Tensor) -> torch.Tensor:
    lum, cx, cz = ycc.unbind(1)
    y = (lum + 16) / 116
    white = _matrix(_WHITE, ycc).view(1, 3, 1, 1)
    return torch.stack([y + cx / 500, y, y - cz / 200], 1) * white


def _xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    white = _matrix(_WHITE, xyz).view(1, 3, 1, 1)
    t = xyz / white
    delta = 6 / 29
    f = torch.where(t > delta**3, t.clamp_min(1e-12) ** (1 / 3), t / (3 * delta**2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def _hunt(lab: torch.Tensor) -> torch.Tensor:
    lum, a, b = lab.unbind(1)
    return torch.stack([lum, 0.01 * lum * a, 0.01 * lum * b], 1)


def _hyab(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    difference = first - second
    return difference[:, 0].abs() + (difference[:, 1].square() + difference[:, 2].square() + 1e-12).sqrt()


def _separable(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Each channel of ``x`` (B, C, H, W) filtered by the outer product of 1-D kernels (C, K) with replicated edges."""
    channels, radius = x.shape[1], rows.shape[1] // 2
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    x = F.conv2d(x, rows.view(channels, 1, -1, 1), groups=channels)
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    return F.conv2d(x, cols.view(channels, 1, 1, -1), groups=channels)


def _csf_filtered(ycc: torch.Tensor, ppd: float) -> torch.Tensor:
    """The opponent channels filtered by their contrast sensitivity (each kernel normalised to sum 1)."""
    largest = max(max(b1, b2) for _, b1, _, b2 in _CSF)
    radius = math.ceil(3 * math.sqrt(largest / (2 * math.pi**2)) * ppd)
    x = torch.arange(-radius, radius + 1, dtype=ycc.dtype, device=ycc.device) / ppd
    filtered = []
    for channel, (a1, b1, a2, b2) in enumerate(_CSF):
        # A sum of two Gaussians is not separable: filter by each term and add, normalised as the 2-D kernel is.
        terms = [(a * math.pi / b, torch.exp(-math.pi**2 * x**2 / b)) for a, b in ((a1, b1), (a2, b2)) if a > 0]
        total = sum(weight * float(g.sum()) ** 2 for weight, g in terms)
        plane = ycc[:, channel:channel + 1]
        filtered.append(sum(weight / total * _separable(plane, g.view(1, -1), g.view(1, -1)) for weight, g in terms))
    return torch.cat(filtered, 1)


def _feature_kernels(ppd: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1-D factors of the edge (first derivative) and point (second derivative) kernels, and the Gaussian across,
    scaled so that each 2-D kernel's positive weights sum to 1 and its negative weights to -1."""
    sigma = 0.5 * _FEATURE_WIDTH * ppd
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    gauss = torch.exp(-x**2 / (2 * sigma**2))
    edge = -x * gauss
    point = (x**2 / sigma**2 - 1) * gauss
    across = float(gauss.sum())

    def balanced(kernel: torch.Tensor) -> torch.Tensor:
        positive, negative = kernel.clamp_min(0), kernel.clamp_max(0)
        return positive / (float(positive.sum()) * across) + negative / (-float(negative.sum()) * across)

    return balanced(edge), balanced(point), gauss


def _features(achromatic: torch.Tensor, ppd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge strength, point strength) of normalised luminance (B, 1, H, W)."""
    edge, point, gauss = _feature_kernels(ppd, achromatic)
    pair = achromatic.expand(-1, 2, -1, -1)
    edges = _separable(pair, torch.stack([edge, gauss]), torch.stack([gauss, edge]))
    points = _separable(pair, torch.stack([point, gauss]), torch.stack([gauss, point]))
    magnitude = lambda g: (g.square().sum(1) + 1e-12).sqrt()  # noqa: E731
    return magnitude(edges), magnitude(points)


def flip_map(reference: torch.Tensor, test: torch.Tensor, ppd: float = PIXELS_PER_DEGREE) -> torch.Tensor:
    """Per-pixel LDR FLIP error (B, H, W) in [0, 1] between sRGB images (B, 3, H, W) in [0, 1]."""
    if reference.shape != test.shape or reference.dim() != 4 or reference.shape[1] != 3:
        raise ValueError(f"FLIP compares two RGB batches (B, 3, H, W) of one shape, got {tuple(reference.shape)} "
                         f"and {tuple(test.shape)}")
    to_xyz = _matrix(_RGB_TO_XYZ, reference)
    opponent = [_xyz_to_ycxcz(_apply(to_xyz, _linear(image.clamp(0, 1)))) for image in (reference, test)]
    from_xyz = torch.linalg.inv(to_xyz)
    labs = []
    for ycc in opponent:
        rgb = _apply(from_xyz, _ycxcz_to_xyz(_csf_filtered(ycc, ppd))).clamp(0, 1)
        labs.append(_hunt(_xyz_to_lab(_apply(to_xyz, rgb))))
    green_blue = _hunt(_xyz_to_lab(_apply(to_xyz, _matrix([[0.0], [1.0], [0.0]], reference).view(1, 3, 1, 1)))), \
        _hunt(_xyz_to_lab(_apply(to_xyz, _matrix([[0.0], [0.0], [1.0]], reference).view(1, 3, 1, 1))))
    cmax = float(_hyab(*green_blue)) ** _QC
    colour = (_hyab(*labs) + 1e-12) ** _QC
    knee = _PC * cmax
    colour = torch.where(colour < knee, _PT / knee * colour, _PT + (colour - knee) / (cmax - knee) * (1 - _PT))
    (edge_r, point_r), (edge_t, point_t) = (_features((ycc[:, :1] + 16) / 116, ppd) for ycc in opponent)
    feature = ((torch.maximum((edge_r - edge_t).abs(), (point_r - point_t).abs()) / math.sqrt(2)) + 1e-12) ** _QF
    return colour ** (1 - feature)


def mean_flip(reference: torch.Tensor, test: torch.Tensor, ppd: float = PIXELS_PER_DEGREE) -> torch.Tensor:
    """Mean FLIP error of each image of the batch (B,)."""
    return flip_map(reference, test, ppd).flatten(1).mean(1)
