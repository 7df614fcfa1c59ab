"""The CUDA paths: models, the pipeline, video planes, the benchmark and training steps on the GPU.

Marked ``gpu`` (the default suite deselects them) and skipped when CUDA is absent. They compare each
CUDA result with the CPU's: the two differ only by floating-point order (and TF32 in convolutions),
so marks agree to a fraction of an 8-bit level and decoded bits agree. `benchmarks/gpu_session.py`
runs them (`pytest -m gpu`) on a GPU machine.
"""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

import wmark
from tests.test_models import SMALL
from wmark import pipeline, zoo
from wmark.bench import engine as bench
from wmark.io.image import read_image
from wmark.io.video import read_yuv

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
DEVICE = "cuda"


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of equal decoded bits between two logit tensors."""
    return float(((a > 0) == (b > 0)).float().mean())


@pytest.mark.parametrize("family", zoo.families())
def test_family_trains_on_cuda_in_bf16_channels_last(family):
    """One optimisation step as the training loop takes it on a GPU: bf16 autocast, channels-last weights."""
    model = zoo.build(family, **SMALL[family]).to(DEVICE).to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, model.size, model.size, generator=generator).to(DEVICE)
    message = (torch.randint(0, 2, (4, model.message_bits), generator=generator).float() * 2 - 1).to(DEVICE)
    loss = 0
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        residual = model.residual(x, message)
        assert residual.shape == x.shape
        for heavy in (False, True):  # every training path: families with a branch per kind of attack use both
            logits, extra = model.decode_for_training(x + residual, heavy, (message > 0).float())
            assert logits.shape == (4, model.message_bits)
            loss = loss + F.binary_cross_entropy_with_logits(logits.float(), (message > 0).float())
            loss = loss + (0 if extra is None else extra.float())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", [card.name for card in zoo.list_cards()])
def test_checkpoint_marks_and_reads_alike_on_cuda_and_cpu(name, photo):
    cpu, gpu = wmark.load(name, device="cpu"), wmark.load(name, device=DEVICE)
    assert next(gpu.model.parameters()).is_cuda
    x = read_image(photo).rgb
    codeword = cpu.codeword(hex="a5" * cpu.code().capacity_bytes)
    on_cpu, on_gpu = cpu.embed_tensor(x, codeword), gpu.embed_tensor(x, codeword)
    assert on_gpu.device.type == "cpu" and on_gpu.shape == x.shape  # the API hands results back on the CPU
    difference = (on_gpu - on_cpu).abs()
    assert float(difference.mean()) < 1e-3 and float(difference.max()) < 4 / 255
    marked = pipeline.quantize(on_cpu)
    logits_cpu, logits_gpu = cpu.frame_logits(marked), gpu.frame_logits(marked)
    assert logits_gpu.device.type == "cpu"
    assert agreement(logits_gpu, logits_cpu) >= 0.97
    found_cpu, found_gpu = cpu.extract(marked), gpu.extract(marked)
    assert (found_gpu.detected, found_gpu.hex) == (found_cpu.detected, found_cpu.hex)


def test_batched_pipeline_on_cuda_matches_one_by_one():
    """A batch of frames of any size goes through the pipeline at once; each result equals its own call's."""
    marker = wmark.load(device=DEVICE)
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(8, 3, 270, 480, generator=generator)
    codeword = torch.randint(0, 2, (marker.bits,), generator=generator)
    batched = marker.embed_tensor(x, codeword)
    single = torch.cat([marker.embed_tensor(x[i : i + 1], codeword) for i in range(len(x))])
    assert float((batched - single).abs().max()) < 2 / 255
    assert agreement(marker.frame_logits(batched), marker.frame_logits(single)) >= 0.97


def test_video_planes_on_the_device(clip, tmp_path):
    frames = next(read_yuv(clip, batch=8))[1]
    on_gpu = frames.to(DEVICE)
    assert on_gpu.y.is_cuda and on_gpu.u.is_cuda and on_gpu.v.is_cuda
    torch.testing.assert_close(on_gpu.rgb().cpu(), frames.rgb(), atol=1e-5, rtol=0)
    torch.testing.assert_close(on_gpu.rgb(64).cpu(), frames.rgb(64), atol=2 / 255, rtol=0)  # CPU resizes uint8
    residual = 0.02 * torch.randn(len(frames), 3, 64, 64, generator=torch.Generator().manual_seed(3))
    marked_gpu, marked_cpu = on_gpu.add_rgb(residual.to(DEVICE)), frames.add_rgb(residual)
    for plane in ("y", "u", "v"):
        gpu_plane, cpu_plane = getattr(marked_gpu, plane), getattr(marked_cpu, plane)
        assert gpu_plane.is_cuda and gpu_plane.dtype == torch.uint8
        levels = (gpu_plane.cpu().int() - cpu_plane.int()).abs()
        assert int(levels.max()) <= 1 and float((levels > 0).float().mean()) < 1e-3  # rounding ties only
    torch.testing.assert_close(marked_gpu.luma_psnr(on_gpu).cpu(), marked_cpu.luma_psnr(frames), atol=0.05, rtol=0)

    marker = wmark.load(device=DEVICE)
    codeword = marker.codeword("gpu")
    report = marker.embed_video(clip, tmp_path / "marked.mp4", codeword, batch=8)
    assert report.frames == 20
    found = marker.extract_video(tmp_path / "marked.mp4")
    assert found.detected and found.message == "gpu"
    assert wmark.load(device="cpu").extract_video(tmp_path / "marked.mp4").message == "gpu"


def test_bench_batches_on_cuda(clip, photo):
    grid = ["identity", "jpeg:quality=50", "resize:scale=0.75", "h264:crf=28"]
    results = {}
    for device, batch in (("cpu", 8), (DEVICE, 8), (DEVICE, 4)):
        result = bench.run([photo, clip], bench.load_models(None, device), grid, frames=8, batch=batch, device=device)
        assert not result.errors
        results[device, batch] = result
    gpu = results[DEVICE, 8]
    assert gpu.settings["gpu"] == torch.cuda.get_device_name()
    cpu_rows = {(r["attack"], r["input"], r["frame"]): r for r in results["cpu", 8].rows}
    assert len(gpu.rows) == len(cpu_rows)
    for row in gpu.rows:  # same frames, same attack params: the same bits, up to CUDA's rounding
        other = cpu_rows[row["attack"], row["input"], row["frame"]]
        assert row["psnr"] == pytest.approx(other["psnr"], abs=0.1)
        assert row["bit_accuracy"] >= other["bit_accuracy"] - 0.05
    smaller = {(r["attack"], r["input"], r["frame"]): r for r in results[DEVICE, 4].rows}
    for row in gpu.rows:
        if not row["attack"].startswith("h264"):  # a video codec sees each batch as one clip
            other = smaller[row["attack"], row["input"], row["frame"]]
            assert row["bit_accuracy"] == pytest.approx(other["bit_accuracy"], abs=0.05)


def test_training_loop_on_cuda_with_codec_workers(photo, tmp_path):
    """Steps of the default family's loop on the GPU: data on the device, bf16, channels-last, real JPEG on
    codec threads (a decoder-only stage starts at its attacks, so every step goes through the codec)."""
    from wmark.train.loop import TrainConfig, train

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        shutil.copy(photo, data / f"photo{i}.jpg")
    family = zoo.find_card(zoo.default_name()).family
    cfg = TrainConfig(family=family, data=str(data), val=str(data), out=str(tmp_path / "run"), device=DEVICE,
                      steps=6, batch=8, log_every=1, val_every=3, pipeline_size=128, codec_workers=4,
                      attacks=["jpeg:quality=50-90"], init=zoo.default_name(), decoder_only=True)
    card = train(cfg)
    assert card.data["training"]["device"] == torch.cuda.get_device_name()
    assert card.data["training"]["steps"] == 6
    log = (tmp_path / "run" / "log.csv").read_text()
    assert log.count("jpeg:quality=50-90") >= 6
    reloaded = wmark.load(str(tmp_path / "run"), device=DEVICE)
    assert reloaded.bits == card.data["bits"]
