"""The Python API: ``wmark.load(name)`` returns a :class:`Watermarker`.

A Watermarker embeds, extracts and detects on tensors, PIL images, numpy arrays and files.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wmark import pipeline, zoo
from wmark.device import resolve_device
from wmark.errors import WmarkError
from wmark.io.image import from_uint8, read_image, to_uint8, write_image
from wmark.payload import PayloadCode, parse_bits
from wmark.stats import DEFAULT_FPR, match_p_value, psnr, ssim


class _Report:
    """A result that the CLI prints as JSON."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Extraction(_Report):
    """What a blind extraction found. ``bits`` is the raw decoded codeword, before ECC."""

    detected: bool
    message: str | None
    hex: str | None
    bits: str
    p_value: float
    bit_confidence: float
    corrected_symbols: int


@dataclass
class Detection(_Report):
    """A detection decision at a chosen false-positive rate."""

    detected: bool
    p_value: float
    fpr: float
    method: str
    matching_bits: int | None = None


@dataclass
class EmbedReport(_Report):
    output: str
    model: str
    psnr: float
    ssim: float
    bits: str
    strength: float


def _to_tensor(image) -> tuple[torch.Tensor, Image.Image | str]:
    """(B, 3, H, W) float in [0, 1] from a tensor, PIL image, numpy HWC uint8 array or file path.

    The second value says how to give the result back: "tensor", "numpy", or the PIL image itself
    (an RGBA image gets its own alpha back; other modes come back as RGB).
    """
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise WmarkError(f"expected a (B, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
        return x.float(), "tensor"
    if isinstance(image, Image.Image):
        return _to_tensor(np.asarray(image.convert("RGB")))[0], image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise WmarkError("expected an (H, W, 3) uint8 array")
        return from_uint8(image)[None], "numpy"
    if isinstance(image, (str, Path)):
        return read_image(image).rgb, "tensor"
    raise WmarkError(f"cannot watermark an object of type {type(image).__name__}")


def _from_tensor(x: torch.Tensor, kind: Image.Image | str):
    if isinstance(kind, str) and kind == "tensor":
        return x
    array = to_uint8(x[0])
    if isinstance(kind, str):
        return array
    marked = Image.fromarray(array)
    if kind.mode == "RGBA":
        marked.putalpha(kind.getchannel("A"))
    return marked


def _check_fpr(fpr: float) -> None:
    if not 0 < fpr <= 1:
        raise WmarkError(f"false-positive rate must be in (0, 1], got {fpr}")


class Watermarker:
    """A trained model with its card: embed, extract and detect at any resolution."""

    def __init__(self, card: zoo.Card, device: str | torch.device = "auto") -> None:
        self.card = card
        self.device = resolve_device(device)
        self.model = zoo.load_model(card).to(self.device)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def bits(self) -> int:
        return self.model.message_bits

    def code(self, key: str | None = None) -> PayloadCode:
        """The Reed-Solomon payload code for this model's bit count and ``key``."""
        return PayloadCode(self.bits, key=key)

    def codeword(self, message: str | None = None, *, bits: str | None = None, hex: str | None = None,
                 key: str | None = None) -> torch.Tensor:
        """The (L,) 0/1 codeword: raw ``bits`` as given, or ``message``/``hex`` coded with ECC and key."""
        given = [v for v in (message, bits, hex) if v is not None]
        if len(given) != 1:
            raise WmarkError("give exactly one of a message, raw bits or hex")
        if bits is not None:
            return parse_bits(bits, self.bits)
        code = self.code(key)
        return code.encode_text(message) if message is not None else code.encode_hex(hex)

    def embed_tensor(self, x: torch.Tensor, codeword: torch.Tensor, strength: float | None = None) -> torch.Tensor:
        """Mark a float batch (B, 3, H, W); returns the marked batch, clamped, not rounded."""
        s = self.card.strength if strength is None else strength
        if not math.isfinite(s) or s <= 0:
            raise WmarkError(f"strength must be a positive number, got {s}")
        message = (codeword.to(self.device).float() * 2 - 1).expand(x.shape[0], -1)
        return pipeline.embed(self.model, x.to(self.device), message, s).cpu()

    def embed(self, image, message: str | None = None, *, bits: str | None = None, hex: str | None = None,
              key: str | None = None, strength: float | None = None):
        """Mark a tensor, PIL image or uint8 array; returns the same kind (uint8 kinds are rounded)."""
        x, kind = _to_tensor(image)
        return _from_tensor(self.embed_tensor(x, self.codeword(message, bits=bits, hex=hex, key=key), strength), kind)

    def embed_file(self, source: str | Path, output: str | Path, message: str | None = None, *,
                   bits: str | None = None, hex: str | None = None, key: str | None = None,
                   strength: float | None = None, quality: int | None = None, force: bool = False) -> EmbedReport:
        """Mark an image file into ``output`` (atomically; the input is never modified).

        PSNR and SSIM are measured on the file as stored (after rounding and any lossy coding).
        """
        source, output = Path(source), Path(output)
        if output.exists() and output.resolve() == source.resolve() and not force:
            raise WmarkError(f"refusing to overwrite the input {source}; give --force to do so")
        codeword = self.codeword(message, bits=bits, hex=hex, key=key)
        picture = read_image(source)
        write_image(picture, self.embed_tensor(picture.rgb, codeword, strength), output, quality=quality)
        stored = read_image(output).rgb
        return EmbedReport(
            output=str(output),
            model=self.name,
            psnr=round(float(psnr(stored, picture.rgb)), 3),
            ssim=round(float(ssim(stored, picture.rgb)), 5),
            bits="".join(map(str, codeword.tolist())),
            strength=self.card.strength if strength is None else strength,
        )

    def logits(self, image) -> torch.Tensor:
        """Decoder logits (L,) for one image (tensor, PIL image, array or path)."""
        x, _ = _to_tensor(image)
        if x.shape[0] != 1:
            raise WmarkError(f"extract and detect take one image at a time, got a batch of {x.shape[0]}")
        return pipeline.decode(self.model, x.to(self.device))[0].float().cpu()

    def extract(self, image, key: str | None = None, fpr: float = DEFAULT_FPR) -> Extraction:
        """Blind extraction: decode, correct errors, and decide at false-positive rate ``fpr``."""
        return self.extract_logits(self.logits(image), key=key, fpr=fpr)

    def extract_logits(self, logits: torch.Tensor, key: str | None = None, fpr: float = DEFAULT_FPR) -> Extraction:
        _check_fpr(fpr)
        result = self.code(key).decode(logits)
        detected = bool(result.valid and result.p_value <= fpr)
        return Extraction(
            detected=detected,
            message=result.text if detected else None,
            hex=result.hex if detected else None,
            bits=result.bits,
            p_value=result.p_value,
            bit_confidence=round(float((2 * torch.sigmoid(logits.abs()) - 1).mean()), 4),
            corrected_symbols=result.corrected_symbols,
        )

    def detect(self, image, key: str | None = None, expect: str | None = None, fpr: float = DEFAULT_FPR) -> Detection:
        """Is this model's mark present? Against an expected message (binomial test) or blind (ECC check)."""
        logits = self.logits(image)
        if expect is None:
            found = self.extract_logits(logits, key=key, fpr=fpr)
            return Detection(found.detected, found.p_value, fpr, "blind")
        _check_fpr(fpr)
        expected = self.codeword(expect, key=key)
        decoded = (logits > 0).to(torch.uint8)
        p_value = float(match_p_value(decoded, expected))
        matches = int((decoded == expected).sum())
        return Detection(p_value <= fpr, p_value, fpr, "expect", matches)


def load(name_or_path: str | Path | None = None, device: str | torch.device = "auto") -> Watermarker:
    """Load a checkpoint by name (None for the default) or by folder path."""
    return Watermarker(zoo.find_card(name_or_path), device=device)
