"""Device selection: ``auto`` picks CUDA when present."""
from __future__ import annotations

import torch

from wmark.errors import WmarkError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a torch.device, checking CUDA is there."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise WmarkError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise WmarkError("device cuda requested but CUDA is not available")
    return resolved
