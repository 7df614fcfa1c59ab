"""Training a pair end to end through its embedding domain (issue 40, item 2).

The encoder's residual reaches the frame as a card embeds it: its patterns (or tile residuals) placed on the
domain's grids, projected on luma and attenuated by the JND map, with the sync template added
(:meth:`wmark.domain.Domain.planes`). The marked frame goes through the attack, then is cut into tiles as a reader
cuts it (:meth:`wmark.domain.Domain.tiles`); the message loss reads a random sample of each band's tiles, each
tile's target its codeword part times its scrambling sign. The encoder learns what survives the JND shaping and
the tiling, which a pair trained on whole native-size images never saw; the decoder learns the tiles of attacked,
resized frames (as :mod:`wmark.train.tiles` does with the encoder frozen).
"""
from __future__ import annotations

import torch

from wmark.domain import Domain

TILES_PER_BAND = 8
"""Tiles of each band (per frame) the message loss reads: the bands' few coarse tiles are all read."""


def domain_for_training(spec: str) -> Domain:
    """The domain named by ``spec``: a checkpoint whose card records one, or comma-separated settings
    ``tiles=16:0.6+3+8:0.6@1400,classes=3,luma,jnd,patterns,template=0.35`` (bands as TILES[:WEIGHT][@UP_TO])."""
    from wmark import zoo
    from wmark.errors import WmarkError

    if "=" not in spec and spec not in ("luma", "jnd", "patterns"):
        card = zoo.find_card(spec)
        if not card.data.get("domain"):
            raise WmarkError(f"--domain {spec}: its card records no embedding domain")
        return Domain.from_dict(card.data["domain"])
    settings: dict = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, value = item.partition("=")
        if key in ("luma", "jnd", "patterns") and not value:
            settings[key] = True
        elif key == "tiles" and value:
            settings["bands"] = [_band(text) for text in value.split("+")]
        elif key in ("classes", "template") and value:
            settings[key] = float(value) if key == "template" else int(value)
        else:
            raise WmarkError(f"--domain: cannot read {item!r}; give a checkpoint name or settings such as "
                             "tiles=16:0.6+3,classes=3,luma,jnd,patterns,template=0.35")
    return Domain.from_dict(settings)


def _band(text: str) -> dict:
    from wmark.errors import WmarkError

    tiles_weight, _, up_to = text.partition("@")
    tiles, _, weight = tiles_weight.partition(":")
    try:
        band = {"tiles": int(tiles), "weight": float(weight) if weight else 1.0}
        return {**band, "up_to": int(up_to)} if up_to else band
    except ValueError:
        raise WmarkError(f"--domain: a band is TILES[:WEIGHT][@UP_TO], got {text!r}") from None


def mark(model, domain: Domain, cover: torch.Tensor, parts: torch.Tensor, strength: float,
         marked_rows: int) -> torch.Tensor:
    """Frames ``cover`` (B, 3, H, W) with the first ``marked_rows`` marked with codeword parts ``parts`` (B, classes,
    bits) of ±1 at ``strength``, through ``domain`` (not clamped: gradients pass everywhere)."""
    planes = domain.planes(model, cover[:marked_rows], parts[:marked_rows].flatten(1))
    marked = cover[:marked_rows] + strength * planes.expand(-1, 3, -1, -1)
    return torch.cat([marked, cover[marked_rows:]])


def tile_sample(model, domain: Domain, attacked: torch.Tensor, parts: torch.Tensor, marked_rows: int,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(tiles (N, 3, size, size), targets (N, bits)) of a sample of :data:`TILES_PER_BAND` tiles per band and frame
    of ``attacked``, each tile's target the bits of its codeword part times its sign (0.5 on unmarked frames)."""
    batch, bits = attacked.shape[0], model.message_bits
    chosen_tiles, chosen_targets = [], []
    for grid, tiles, signs in domain.tiles(attacked, model.size, bits):
        wanted = (parts[:, grid.tile_classes()] * signs > 0).float()  # (B, count, bits)
        wanted[marked_rows:] = 0.5
        keep = torch.rand(batch, grid.count, generator=generator).argsort(1)[:, :TILES_PER_BAND]
        rows = (keep + grid.count * torch.arange(batch).view(-1, 1)).flatten().to(attacked.device)
        chosen_tiles.append(tiles[rows])
        chosen_targets.append(wanted.reshape(-1, bits)[rows])
    return torch.cat(chosen_tiles), torch.cat(chosen_targets)
