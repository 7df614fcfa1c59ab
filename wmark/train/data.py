"""Training data: decode every image once, then draw random views from memory."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from wmark.errors import WmarkError
from wmark.io.image import list_images, read_image


def image_files(folder: str | Path) -> list[Path]:
    """The images directly or recursively inside ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WmarkError(f"data folder {folder} does not exist")
    files = list_images(folder)
    if not files:
        raise WmarkError(f"no images in {folder}")
    return files


def _shrink(rgb: torch.Tensor, max_side: int) -> torch.Tensor:
    height, width = rgb.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(rgb, size=size, mode="bilinear", antialias=True, align_corners=False)


class ImageCache:
    """Images decoded once and held in memory as uint8 (long side at most ``max_side``).

    Each :meth:`sample` draws random crops (area 25–100 %, aspect 1/2–2), flips and
    resizes them to ``size``: no disk reads after construction.
    """

    def __init__(self, folder: str | Path, max_side: int = 1024, device: str | torch.device = "cpu") -> None:
        self.files = image_files(folder)
        self.images = [
            (_shrink(read_image(path).rgb, max_side) * 255).round().to(torch.uint8).to(device) for path in self.files
        ]

    def sample(self, batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """A float batch (B, 3, size, size) in [0, 1] of random views."""
        views = []
        for _ in range(batch):
            image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
            views.append(self._random_view(image, size, generator))
        return torch.cat(views)

    @staticmethod
    def _random_view(image: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
        height, width = image.shape[-2:]
        area, log_aspect, fy, fx, flip = torch.rand(5, generator=generator).tolist()
        area = 0.25 + 0.75 * area
        aspect = 2.0 ** (2 * log_aspect - 1)
        crop_h = min(height, max(8, round((area * height * width / aspect) ** 0.5)))
        crop_w = min(width, max(8, round((area * height * width * aspect) ** 0.5)))
        top, left = round(fy * (height - crop_h)), round(fx * (width - crop_w))
        crop = image[..., top : top + crop_h, left : left + crop_w].float() / 255
        if flip < 0.5:
            crop = crop.flip(-1)
        return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def load_validation(folder: str | Path) -> list[torch.Tensor]:
    """Full-resolution validation images, (1, 3, H, W) float each."""
    return [read_image(path).rgb for path in image_files(folder)]
