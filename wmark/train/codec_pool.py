"""Real codecs (straight-through attacks such as jpeg, webp, h264) applied in worker threads.

Pillow and PyAV release the GIL while they encode and decode, so slices of the batch go through
the codec in parallel. The params are drawn once for the whole batch and sliced, so the result
is the same as applying the attack in one call.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from attacks.base import PerSample, straight_through
from attacks.compose import OneOf


def _real_codec(attack, params: dict):
    """The per-sample straight-through attack that ``attack`` applies with ``params`` (a batch-wide pick), or None."""
    if isinstance(attack, OneOf) and attack.per == "batch":
        return _real_codec(attack.attacks[params["index"]], params["params"])
    if isinstance(attack, PerSample) and attack.grad == "ste":
        return attack, params
    return None


class CodecPool:
    """Applies attacks; a real codec runs on ``workers`` slices of the batch at once (``workers`` < 2: inline)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="codec") if workers > 1 else None

    def __call__(self, attack, x: torch.Tensor, params: dict, cover: torch.Tensor) -> torch.Tensor:
        found = _real_codec(attack, params) if self.executor is not None and x.shape[0] > 1 else None
        if found is None:
            return attack(x, params=params, cover=cover)
        codec, params = found
        detached = x.detach()

        def run(rows: torch.Tensor) -> torch.Tensor:
            return codec(detached[rows], params={key: value[rows] for key, value in params.items()})

        slices = torch.arange(x.shape[0]).tensor_split(min(self.workers, x.shape[0]))
        return straight_through(x, torch.cat(list(self.executor.map(run, slices))))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
