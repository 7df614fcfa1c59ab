"""Image files <-> float tensors, through Pillow, keeping mode, alpha and metadata.

``read_image`` gives a :class:`Picture`: the upright RGB pixels the models work on, plus what is
needed to write the marked pixels back in the file's own mode (alpha, bit depth, ICC profile,
EXIF, dpi). ``write_image`` does that, atomically. User-caused failures raise ``WmarkError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from attacks.colour import BT601_LUMA
from wmark.errors import WmarkError
from wmark.io.atomic import atomic_output, check_folder

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
IMAGE_SUFFIXES = frozenset(_FORMATS)
READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")

# Modes each format stores faithfully, alpha included (Pillow writes RGBA BMPs but reads them
# back without alpha). WebP has no grey mode: L/LA are stored as RGB/RGBA with equal channels.
_CAN_HOLD = {
    "PNG": {"RGB", "RGBA", "L", "LA", "I;16"},
    "JPEG": {"RGB", "L", "CMYK"},
    "WEBP": {"RGB", "RGBA", "L", "LA"},
    "TIFF": {"RGB", "RGBA", "L", "LA", "I;16", "CMYK"},
    "BMP": {"RGB", "L"},
}
_METADATA = {
    "PNG": {"icc_profile", "exif", "dpi"},
    "JPEG": {"icc_profile", "exif", "dpi"},
    "WEBP": {"icc_profile", "exif"},
    "TIFF": {"icc_profile", "exif", "dpi"},
    "BMP": {"dpi"},
}
_WHAT = {
    "RGBA": "an alpha channel",
    "LA": "an alpha channel",
    "I;16": "16-bit samples",
    "CMYK": "CMYK",
}
# ICC header bytes 16:20 name the colour space a profile applies to.
_ICC_SPACE = {
    "RGB": b"RGB ",
    "RGBA": b"RGB ",
    "L": b"GRAY",
    "LA": b"GRAY",
    "I;16": b"GRAY",
    "CMYK": b"CMYK",
}
_GRAY16 = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_MODES8 = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK"}
# EXIF worth carrying over from a TIFF, whose IFD0 otherwise mixes in layout tags (strips, ...).
# Description, make, model, orientation, software, date/time, artist, copyright:
_TIFF_EXIF_TAGS = (270, 271, 272, 274, 305, 306, 315, 33432)
_BT601 = torch.tensor(BT601_LUMA)


@dataclass
class Picture:
    """A decoded image and what is needed to write it back in its own mode.

    rgb: float32 (1, 3, H, W) in [0, 1], EXIF orientation applied.
    alpha: the original alpha channel, uint8 (H, W), exactly as read (after orientation), or None.
    mode: the original Pillow mode; format: the original Pillow format.
    info: metadata for writing: icc_profile, exif (Orientation reset to 1), dpi.
    bit_depth: 16 for 16-bit greyscale, else 8.
    """

    rgb: torch.Tensor
    alpha: np.ndarray | None
    mode: str
    format: str | None
    info: dict = field(default_factory=dict)
    bit_depth: int = 8


def is_image_file(path: str | os.PathLike) -> bool:
    """True for an existing file whose extension is one of IMAGE_SUFFIXES."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files anywhere under ``folder`` (by extension), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_image_file(p))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float (..., C, H, W) in [0, 1] -> uint8 numpy (..., H, W, C), rounded and clamped."""
    return _quantize(x.movedim(-3, -1), 255, np.uint8)


def from_uint8(a: np.ndarray) -> torch.Tensor:
    """uint8 numpy (..., H, W, C) -> float32 tensor (..., C, H, W) in [0, 1]."""
    a = np.ascontiguousarray(a)
    planes = torch.from_numpy(a if a.flags.writeable else a.copy()).movedim(-1, -3)
    return planes.to(torch.float32, memory_format=torch.contiguous_format).div_(255)


def read_image(path: str | os.PathLike) -> Picture:
    """Read a PNG, JPEG, WebP, TIFF or BMP file (first frame of an MPO) into a Picture.

    Modes: RGB, RGBA, L, LA, 1 (read as L), P/PA (palette expanded to RGB, or RGBA when it has
    transparency), 16-bit greyscale I;16* and I, CMYK (Pillow's plain conversion to RGB).
    Pillow itself reduces 16-bit colour (RGB/RGBA PNG, TIFF) to 8 bits.
    A transparency key on L or RGB becomes an alpha channel. The file is fully decoded here,
    so a truncated file fails now.
    """
    path = Path(path)
    if not path.exists():
        raise WmarkError(f"{path}: no such file")
    if not path.is_file():
        raise WmarkError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise WmarkError(f"{path}: empty file")
    img, fmt, info = _decode(path)
    rgb, alpha, bit_depth = _pixels(img, path)
    return Picture(rgb=rgb, alpha=alpha, mode=img.mode, format=fmt, info=info, bit_depth=bit_depth)


def write_image(
    picture: Picture, rgb: torch.Tensor, path: str | os.PathLike, quality: int | None = None
) -> None:
    """Write ``rgb`` (float (1, 3, H, W) or (3, H, W) in [0, 1]) in ``picture``'s original mode.

    The format follows the extension of ``path``. RGB stays RGB, CMYK is converted back to CMYK
    (Pillow's plain conversion), RGBA/LA get the original alpha back bit-exact. Greyscale modes
    (L, LA, 1, 16-bit) get the ITU-R BT.601 luma 0.299 R + 0.587 G + 0.114 B of the marked
    pixels, 16-bit as round(y * 65535). Palette images are written as RGB, or RGBA when they had
    transparency: re-quantising to 256 colours would destroy the watermark. ``quality`` (0-100)
    applies to JPEG (default 95, 4:4:4 chroma) and WebP (default 95), and is ignored otherwise.
    ICC profile, EXIF and dpi are kept where the format stores them. A format that cannot store
    the mode (alpha in JPEG, 16-bit in JPEG/WebP/BMP, CMYK outside JPEG/TIFF) raises WmarkError.
    """
    path = Path(path)
    fmt, mode = _target(picture, path, quality)
    img = _to_pil(picture, rgb, mode)
    if fmt == "WEBP" and mode in ("L", "LA"):  # WebP has no grey mode
        img = img.convert("RGBA" if mode == "LA" else "RGB")
    params = _save_params(fmt, picture.info, img.mode, quality)
    try:
        with atomic_output(path) as tmp:
            img.save(tmp, format=fmt, **params)
    except OSError as e:
        raise WmarkError(f"{path}: cannot write ({e.strerror or _one_line(e)})") from e


def _target(picture: Picture, path: Path, quality: int | None) -> tuple[str, str]:
    """Check that ``picture`` can be written to ``path``; return the Pillow format and mode."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        allowed = " ".join(sorted(IMAGE_SUFFIXES))
        raise WmarkError(f"{path}: unknown image extension {path.suffix!r} (use one of {allowed})")
    mode = _output_mode(picture)
    if mode not in _CAN_HOLD[fmt]:
        fits = [e for e in (".png", ".jpg", ".webp", ".tif") if mode in _CAN_HOLD[_FORMATS[e]]]
        raise WmarkError(f"{path}: {fmt} cannot store {_WHAT[mode]}; use {', '.join(fits)}")
    if quality is not None and not (isinstance(quality, int) and 0 <= quality <= 100):
        raise WmarkError(f"{path}: quality must be an integer from 0 to 100, got {quality!r}")
    check_folder(path)
    return fmt, mode


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _decode(path: Path) -> tuple[Image.Image, str | None, dict]:
    """Open and fully decode; return the upright image, its format and the metadata to keep."""
    try:
        with Image.open(path, formats=READ_FORMATS) as img:
            frames = getattr(img, "n_frames", 1)
            if frames > 1 and img.format != "MPO":  # MPO: a JPEG plus extra views; keep the first
                raise WmarkError(f"{path}: has {frames} frames; only still images are supported")
            img.load()
            fmt = "JPEG" if img.format == "MPO" else img.format
            return ImageOps.exif_transpose(img), fmt, _metadata(img)
    except WmarkError:
        raise
    except Image.DecompressionBombError as e:
        raise WmarkError(f"{path}: image too large ({_one_line(e)})") from e
    except UnidentifiedImageError as e:
        raise WmarkError(f"{path}: not a PNG, JPEG, WebP, TIFF or BMP image") from e
    except Exception as e:  # Pillow signals corrupt data with many exception types
        raise WmarkError(f"{path}: truncated or corrupt image ({_one_line(e)})") from e


def _metadata(img: Image.Image) -> dict:
    info = {}
    if img.info.get("icc_profile"):
        info["icc_profile"] = img.info["icc_profile"]
    if img.info.get("dpi"):
        info["dpi"] = tuple(float(d) for d in img.info["dpi"])
    exif = img.getexif()
    if img.format == "TIFF":
        exif = _tiff_exif(exif)
    if len(exif):
        if ExifTags.Base.Orientation in exif:
            exif[ExifTags.Base.Orientation] = 1  # the pixels are upright now
        info["exif"] = exif.tobytes()
    return info


def _tiff_exif(tags: Image.Exif) -> Image.Exif:
    exif = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in tags:
            exif[tag] = tags[tag]
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        if ifd in tags:
            exif[ifd] = tags.get_ifd(ifd)
    return exif


def _pixels(img: Image.Image, path: Path) -> tuple[torch.Tensor, np.ndarray | None, int]:
    if img.mode in _GRAY16:
        a = np.asarray(img)
        if a.min() < 0 or a.max() > 65535:
            raise WmarkError(f"{path}: 32-bit samples outside the 16-bit range are not supported")
        y = torch.from_numpy(a.astype(np.float32) / 65535)
        return y.expand(1, 3, *y.shape).contiguous(), None, 16
    if img.mode not in _MODES8:
        raise WmarkError(f"{path}: unsupported image mode {img.mode!r}")
    if img.has_transparency_data and img.mode not in ("RGBA", "LA"):
        img = img.convert("LA" if img.mode in ("1", "L") else "RGBA")
    alpha = np.array(img.getchannel("A")) if img.mode in ("RGBA", "LA") else None
    return from_uint8(np.array(img.convert("RGB")))[None], alpha, 8


def _output_mode(picture: Picture) -> str:
    if picture.bit_depth == 16:
        return "I;16"
    if picture.mode == "CMYK":
        return "CMYK"
    gray = picture.mode in ("1", "L", "LA")
    if picture.alpha is not None:
        return "LA" if gray else "RGBA"
    return "L" if gray else "RGB"


def _to_pil(picture: Picture, rgb: torch.Tensor, mode: str) -> Image.Image:
    x = rgb.detach().float().cpu()
    x = x[0] if x.dim() == 4 and x.shape[0] == 1 else x
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"expected rgb of shape (1, 3, H, W) or (3, H, W), got {tuple(rgb.shape)}")
    if picture.alpha is not None and tuple(x.shape[1:]) != picture.alpha.shape:
        raise ValueError(f"rgb is {tuple(x.shape[1:])}, the alpha channel {picture.alpha.shape}")
    if mode == "I;16":
        return Image.fromarray(_quantize(_luma(x), 65535, np.uint16))
    img = Image.fromarray(to_uint8(_luma(x)[None])[..., 0] if mode in ("L", "LA") else to_uint8(x))
    if mode == "CMYK":
        return img.convert("CMYK")
    if picture.alpha is not None:
        return Image.merge(mode, [*img.split(), Image.fromarray(picture.alpha)])
    return img


def _luma(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of (3, H, W) RGB, as Pillow's RGB -> L: (H, W)."""
    return torch.tensordot(_BT601, x, dims=1)


def _quantize(x: torch.Tensor, peak: int, dtype: type) -> np.ndarray:
    """Round and clamp to ``0..peak`` (in place on one scaled copy: three times faster at 1080p)."""
    return (x.detach().float().cpu() * peak).round_().clamp_(0, peak).numpy().astype(dtype)


def _save_params(fmt: str, info: dict, mode: str, quality: int | None) -> dict:
    params = {k: v for k, v in info.items() if k in _METADATA[fmt]}
    icc = params.get("icc_profile")
    if icc is not None and icc[16:20] != _ICC_SPACE[mode]:
        del params["icc_profile"]  # e.g. a grey profile on a grey image stored as RGB in WebP
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 95 if quality is None else quality
    if fmt == "JPEG":
        params["subsampling"] = 0
    if fmt == "TIFF":
        params["compression"] = "tiff_lzw"
    return params
