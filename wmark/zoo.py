"""The registry of model families and of trained checkpoints (model cards).

Families register with :func:`register_family` and are built with :func:`build`.
A trained model is a folder ``<name>/`` holding ``card.json`` and ``model.safetensors``,
found in ``$WMARK_CHECKPOINTS`` (a path list) and in the installed ``wmark.checkpoints``.
Reading cards imports no torch, so listing models stays fast; building and loading do.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from wmark.errors import WmarkError

_FAMILIES: dict[str, type] = {}
_FAMILY_MODULES = ("hidden", "mbrs", "dwtcnn", "tsdl", "cin", "stegastamp")
CARD = "card.json"
WEIGHTS = "model.safetensors"


def register_family(name: str) -> Callable[[type], type]:
    """Class decorator: make a model family buildable by name."""

    def add(cls: type) -> type:
        _FAMILIES[name] = cls
        return cls

    return add


def families() -> list[str]:
    """Names of the registered model families."""
    for module in _FAMILY_MODULES:
        importlib.import_module(f"wmark.models.{module}")
    return sorted(_FAMILIES)


def build(family: str, **kwargs) -> torch.nn.Module:
    """Construct an untrained model of ``family`` with constructor ``kwargs``."""
    if family not in families():
        raise WmarkError(f"unknown model family {family!r}; known: {', '.join(families())}")
    try:
        return _FAMILIES[family](**kwargs)
    except (TypeError, ValueError) as exc:
        raise WmarkError(f"cannot build a {family} model with {kwargs}: {exc}") from None


@dataclass
class Card:
    """A trained model's card (timm's pretrained config, CompressAI's zoo)."""

    name: str
    path: Path
    data: dict = field(repr=False)

    @property
    def family(self) -> str:
        return self.data["family"]

    @property
    def kwargs(self) -> dict:
        return self.data["kwargs"]

    @property
    def strength(self) -> float:
        return float(self.data["strength"])

    @property
    def payload(self) -> dict:
        """The payload code's layout (:meth:`wmark.payload.PayloadCode.describe`), which builds the model's code."""
        return self.data["payload"]

    @property
    def domain(self) -> dict | None:
        """The embedding domain (:meth:`wmark.domain.Domain.from_dict`); None for the whole-frame pipeline."""
        return self.data.get("domain")

    @property
    def video_domain(self) -> dict | None:
        """The band weights video frames are marked with, where they differ from the image domain's."""
        return self.data.get("video_domain")

    @property
    def presence_threshold(self) -> float | None:
        """The calibrated logit magnitude of a mark under any key (``benchmarks/presence.py``), or None."""
        presence = self.data.get("presence")
        return None if presence is None else float(presence["threshold"])

    @property
    def psnr_floor(self) -> float | None:
        """The PSNR (dB) the default strength never takes an image under, or None."""
        floor = self.data.get("psnr_floor")
        return None if floor is None else float(floor)

    def with_domain(self, domain: dict | None, **fields) -> "Card":
        """This card's model in another embedding ``domain`` (and other ``fields``), with the bit count and payload
        block that domain's codeword needs."""
        from wmark.domain import Domain
        from wmark.payload import PayloadCode

        bits = Domain.from_dict(domain).codeword_bits(self.kwargs["message_bits"])
        code = PayloadCode(bits).describe()
        data = {**self.data, "domain": domain, "bits": bits, "payload": code, "data_bits": code["data_bits"],
                "capacity_bytes": code["capacity_bytes"], **fields}
        return Card(self.name, self.path, data)

    def summary(self) -> dict:
        """The card's headline fields, as `wmark models --json` lists them."""
        keys = ("family", "bits", "data_bits", "capacity_bytes", "strength", "metrics")
        return {"name": self.name, **{k: self.data.get(k) for k in keys}, "native_size": self.data.get("size"),
                "path": str(self.path)}


def checkpoint_roots() -> list[Path]:
    """Folders searched for checkpoints, in order."""
    roots = [Path(p) for p in os.environ.get("WMARK_CHECKPOINTS", "").split(os.pathsep) if p]
    roots.append(Path(str(resources.files("wmark.checkpoints"))))
    return roots


def read_card(folder: Path) -> Card:
    """Read ``folder/card.json``; a missing or malformed card is a WmarkError."""
    try:
        data = json.loads((folder / CARD).read_text())
    except FileNotFoundError:
        raise WmarkError(f"no {CARD} in checkpoint folder {folder}") from None
    except (OSError, ValueError) as exc:
        raise WmarkError(f"corrupt model card {folder / CARD}: {exc}") from None
    missing = {"family", "kwargs", "bits", "payload", "size", "strength", "sha256"} - set(data)
    if missing:
        raise WmarkError(f"model card {folder / CARD} lacks {', '.join(sorted(missing))}")
    return Card(name=folder.name, path=folder, data=data)


def list_cards() -> list[Card]:
    """Every checkpoint found, first root winning on name clashes; unreadable cards are skipped with a warning."""
    cards: dict[str, Card] = {}
    for root in checkpoint_roots():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / CARD).is_file() and folder.name not in cards:
                    try:
                        cards[folder.name] = read_card(folder)
                    except WmarkError as exc:
                        warnings.warn(f"skipping checkpoint: {exc}", stacklevel=2)
    return list(cards.values())


MEDIA = ("image", "video")


def default_name(index: Path | None = None, medium: str = "image") -> str:
    """Name of the default checkpoint for ``medium`` (image or video), from ``index`` (the installed
    ``zoo.json`` when None): its ``default``, and for videos its ``video`` entry where it has one."""
    if medium not in MEDIA:
        raise WmarkError(f"unknown medium {medium!r}; use image or video")
    if index is None:
        index = Path(str(resources.files("wmark.checkpoints"))) / "zoo.json"
    try:
        data = json.loads(index.read_text())
        return data.get("video", data["default"]) if medium == "video" else data["default"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WmarkError(f"cannot read the default model from {index}: {exc!r}") from None


def find_card(name_or_path: str | os.PathLike | None, medium: str = "image") -> Card:
    """Resolve a checkpoint name (or None for ``medium``'s default) or a checkpoint folder path."""
    if name_or_path is None:
        name_or_path = default_name(medium=medium)
    candidate = Path(name_or_path)
    if (candidate / CARD).is_file() or (candidate.is_dir() and os.sep in str(name_or_path)):
        return read_card(candidate)
    for card in list_cards():
        if card.name == str(name_or_path):
            return card
    known = ", ".join(c.name for c in list_cards()) or "none"
    raise WmarkError(f"unknown model {str(name_or_path)!r}; known: {known}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(card: Card) -> torch.nn.Module:
    """Build the card's family and load its weights: sha256 verified, strict, never unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = card.path / WEIGHTS
    if not weights.is_file():
        raise WmarkError(f"checkpoint {card.name}: missing {weights}")
    if sha256_file(weights) != card.data["sha256"]:
        raise WmarkError(f"checkpoint {card.name}: {WEIGHTS} does not match the sha256 in its card (corrupt file?)")
    model = build(card.family, **card.kwargs)
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as exc:
        raise WmarkError(f"checkpoint {card.name}: {WEIGHTS} is not a readable safetensors file: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WmarkError(f"checkpoint {card.name}: weights do not fit the {card.family} model: {exc}") from None
    return model.eval()


def save_checkpoint(folder: Path, model: torch.nn.Module, card: dict) -> Card:
    """Write ``model.safetensors`` and ``card.json`` (with the weights' sha256) atomically."""
    from safetensors.torch import save_file

    from wmark.io.atomic import atomic_output

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    card = {**card, "sha256": sha256_file(folder / WEIGHTS)}
    with atomic_output(folder / CARD) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2) + "\n")
    return read_card(folder)
