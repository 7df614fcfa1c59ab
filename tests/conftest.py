"""Shared fixtures: a real photo, a small untrained checkpoint, and the committed checkpoints."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from wmark import zoo
from wmark.payload import PayloadCode

FIXTURES = Path(__file__).parent / "fixtures"
TINY_CLIP_MODEL = "mbrs-64"
"""The checkpoint the tests mark the 160x96 fixture clip with: the classic whole-frame mbrs-64. The tiled
default spreads 192 bits over tiles and needs frames of 320 px or more (benchmarks/results/small_inputs.json)."""
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_script(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module, its sibling imports (other benchmark scripts) unloaded afterwards."""
    before = set(sys.modules)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
    finally:
        sys.path.remove(str(BENCHMARKS))
        for module in set(sys.modules) - before:
            if Path(getattr(sys.modules[module], "__file__", None) or "").parent == BENCHMARKS:
                del sys.modules[module]
    return script


@pytest.fixture
def one_torch_thread():
    """Tiny models train several times faster on one torch thread, and do not collapse when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real 512×288 photo (see tests/fixtures/README.md)."""
    return FIXTURES / "photo.jpg"


@pytest.fixture(scope="session")
def clip() -> Path:
    """A 160×96, 20-frame H.264 pan over the photo, with AAC audio and a subtitle (make_clip.py)."""
    return FIXTURES / "clip.mp4"


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A tiny HiDDeN checkpoint folder with random weights: for plumbing and error tests."""
    torch.manual_seed(0)
    kwargs = {"message_bits": 32, "size": 64, "channels": 8, "encoder_blocks": 2, "decoder_blocks": 3}
    model = zoo.build("hidden", **kwargs)
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    card = {
        "name": "tiny", "family": "hidden", "kwargs": kwargs, "bits": 32, "data_bits": 8,
        "capacity_bytes": 1, "payload": PayloadCode(32).describe(), "size": 64, "strength": 1.0, "metrics": {},
    }
    zoo.save_checkpoint(folder, model, card)
    return folder
