"""Fine-tuning a decoder inside its embedding domain (the invisible-default issue).

A tiled domain's decoder reads native-size tiles cut from a frame that was marked through the domain
and then attacked; the decoder was trained on whole frames, so thumbnails (coarse tiles holding a
shrunk, JPEG-compressed pattern amid downscaled content) read poorly. Here the decoder alone is trained
on exactly those tiles: photos are cropped and resized, marked through the domain with random codewords,
attacked with real codecs (libjpeg through Pillow, libx264 through PyAV), blur, brightness and
thumbnails, and cut into tiles as :meth:`wmark.domain.Domain.tiles` cuts them. Each tile's target is its
codeword part times its sign. The encoder, and so the patterns and how the mark looks, is untouched
(the decoder-only stage of MBRS and of the two-stage separable framework, run in the domain).
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from attacks.spec import create
from wmark.domain import Domain
from wmark.io.image import from_uint8, to_uint8
from wmark.pipeline import quantize


@dataclass(frozen=True)
class TileTuning:
    frames: int = 800
    """Marked, attacked frames the tiles are cut from."""
    fine_tiles: int = 12
    """Tiles kept per frame from each band but the last (the coarsest), which keeps all of its few tiles."""
    steps: int = 1500
    batch: int = 96
    lr: float = 1e-4
    long_side: tuple[int, int] = (1280, 2048)
    strength: tuple[float, float] = (0.7, 1.1)
    """Strength as a factor of the card's, drawn per frame, so that weakly marked photos are learned too."""
    seed: int = 0


def _scaled(image: Image.Image, scale: float, resample=Image.LANCZOS) -> Image.Image:
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)


def _smaller(image: Image.Image, rng: random.Random) -> Image.Image:
    return _scaled(image, rng.uniform(0.4, 0.9), rng.choice([Image.LANCZOS, Image.BICUBIC, Image.BILINEAR]))


def _through(image: Image.Image, name: str, **options) -> Image.Image:
    """``image`` through the attack library's ``name`` (real codecs for jpeg, webp and h264)."""
    return _image(create(name, **options)(from_uint8(np.asarray(image))[None]))


def attack(image: Image.Image, rng: random.Random) -> Image.Image:
    """One of the edits photos meet on the way, at a random setting: none; JPEG or WebP at quality 40-90 (libjpeg and
    libwebp through Pillow); a resize to 0.4-0.9 kept small, as is or then JPEG 60-90 (a shared copy, a screenshot's
    resample); a 0.5x resize and back; a 3x3 median; blur; brightness; Gaussian noise of sigma 2-10 (of 255); one
    H.264 frame at CRF 23-30; or a thumbnail (long side 280-1100 px, then JPEG 60-90)."""
    kind = rng.choice(["none", "jpeg", "jpeg", "webp", "webp", "smaller", "smaller+jpeg", "smaller+jpeg", "resize",
                       "median", "blur", "brightness", "noise", "h264", "thumb", "thumb"])
    if kind in ("jpeg", "webp"):
        return _through(image, kind, quality=rng.randint(40, 90))
    if kind == "smaller":
        return _smaller(image, rng)
    if kind == "smaller+jpeg":
        return _through(_smaller(image, rng), "jpeg", quality=rng.randint(60, 90))
    if kind == "resize":
        small = image.resize((image.width // 2, image.height // 2), Image.BICUBIC)
        return small.resize(image.size, Image.BICUBIC)
    if kind == "median":
        return _through(image, "median", size=3)
    if kind == "blur":
        return _through(image, "blur", sigma=rng.uniform(0.5, 1.5))
    if kind == "brightness":
        return Image.fromarray(np.clip(np.asarray(image) * rng.uniform(0.8, 1.3), 0, 255).round().astype(np.uint8))
    if kind == "noise":
        return _through(image, "noise", std=rng.uniform(2, 10) / 255)
    if kind == "h264":
        return _through(image, "h264", crf=rng.randint(23, 30))
    if kind == "thumb":
        small = _scaled(image, min(1.0, rng.uniform(280, 1100) / max(image.size)))
        return _through(small, "jpeg", quality=rng.randint(60, 90))
    return image


def _image(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(to_uint8(x[0]))


def tile_set(model, domain: Domain, strength: float, photos: list[Path], config: TileTuning,
             log=print) -> tuple[torch.Tensor, torch.Tensor]:
    """(tiles (N, 3, size, size), targets (N, bits) in {0, 1}) cut from marked, attacked frames."""
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    bits, size = model.message_bits, model.size
    tiles, targets = [], []
    started = time.perf_counter()
    for frame in range(config.frames):
        photo = Image.open(rng.choice(photos)).convert("RGB")
        side = rng.uniform(0.6, 1.0)
        box_w, box_h = round(photo.width * side), round(photo.height * rng.uniform(0.6, 1.0))
        left, top = rng.randint(0, photo.width - box_w), rng.randint(0, photo.height - box_h)
        scale = rng.uniform(*config.long_side) / max(box_w, box_h)
        crop = photo.resize((round(box_w * scale), round(box_h * scale)), Image.LANCZOS, box=(left, top, left + box_w,
                                                                                            top + box_h))
        x = from_uint8(np.asarray(crop))[None]
        parts = torch.randint(0, 2, (1, domain.classes, bits), generator=generator).float() * 2 - 1
        with torch.no_grad():
            residual = domain.residual(model, x, parts.flatten(1))
        marked = quantize(x + strength * rng.uniform(*config.strength) * residual)
        attacked = from_uint8(np.asarray(attack(_image(marked), rng)))[None]
        bands = domain.tiles(attacked, size, bits)
        for index, (grid, band_tiles, signs) in enumerate(bands):
            wanted = parts[0, grid.tile_classes()] * signs[0]  # (count, bits)
            keep = torch.arange(grid.count)
            if index + 1 < len(bands) and grid.count > config.fine_tiles:
                keep = torch.randperm(grid.count, generator=generator)[: config.fine_tiles]
            tiles.append(band_tiles[keep])
            targets.append((wanted.expand(grid.count, bits)[keep] > 0).float())
        if (frame + 1) % 50 == 0:
            log(f"tiles: {frame + 1}/{config.frames} frames, {sum(len(t) for t in tiles)} tiles, "
                f"{time.perf_counter() - started:.0f} s")
    return torch.cat(tiles), torch.cat(targets)


def decoder_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters of the decoder path (names starting with ``decoder``)."""
    return [p for name, p in model.named_parameters() if name.startswith("decoder")]


def tune_decoder(model, tiles: torch.Tensor, targets: torch.Tensor, config: TileTuning, log=print) -> dict:
    """Train the decoder alone on ``tiles``; batch norm keeps its statistics. Returns a report."""
    torch.manual_seed(config.seed)
    for p in model.parameters():
        p.requires_grad_(False)
    params = decoder_parameters(model)
    for p in params:
        p.requires_grad_(True)
    model.eval()
    optimizer = torch.optim.Adam(params, lr=config.lr)
    started, running = time.perf_counter(), []
    for step in range(config.steps):
        chosen = torch.randint(0, len(tiles), (config.batch,))
        logits = model.decode(tiles[chosen])
        loss = F.binary_cross_entropy_with_logits(logits, targets[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(((logits > 0).float() == targets[chosen]).float().mean().item())
        if (step + 1) % 100 == 0:
            log(f"step {step + 1}/{config.steps}: loss {loss.item():.4f}, tile bit accuracy "
                f"{np.mean(running[-100:]):.4f}, {time.perf_counter() - started:.0f} s")
    for p in model.parameters():
        p.requires_grad_(False)
    return {**asdict(config), "tiles": len(tiles), "seconds": round(time.perf_counter() - started, 1),
            "final_tile_bit_accuracy": round(float(np.mean(running[-100:])), 4)}
