"""The training loop: curriculum, checkpoint export, resume and the CLI entry point."""
from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

import wmark
from wmark.train.curriculum import Curriculum
from wmark.train.loop import STATE, TrainConfig, train

TINY = {"message_bits": 24, "size": 64, "channels": 8, "encoder_blocks": 2, "decoder_blocks": 3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    generator = torch.Generator().manual_seed(0)
    for i in range(3):
        pixels = (torch.rand(140, 200, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(root / f"{i}.png")
    return root


def test_curriculum_stages_and_weight():
    plan = Curriculum(warmup_accuracy=0.9, ramp_steps=10, attack_specs=("identity", "jpeg"), attack_steps=5,
                      image_weight=1.0, target_psnr=40.0)
    assert plan.current_image_weight(0) == pytest.approx(0.01)
    for step in range(1, 200):
        note = plan.update(step, 1.0, 30.0)
        if note:
            break
    assert plan.stage == "image"
    before = plan.log_weight
    plan.update(step + 1, 1.0, 30.0)
    assert plan.log_weight > before, "weight grows while the PSNR is under target"
    plan.update(step + 2, 1.0, 50.0)
    plan.update(step + 3, 1.0, 50.0)
    assert plan.log_weight < before + 0.02
    for later in range(step + 4, step + 20):
        plan.update(later, 1.0, 40.0)
    assert plan.stage == "attacks"
    assert plan.active_attacks(plan.stage_start) == ("identity",)
    assert plan.active_attacks(plan.stage_start + 5) == ("identity", "jpeg")


def test_train_writes_a_loadable_checkpoint_and_resumes(folder, tmp_path):
    out = tmp_path / "tiny-run"
    config = dict(family="hidden", data=str(folder), val=str(folder), out=str(out), steps=3, batch=2,
                  val_every=3, log_every=1, model_kwargs=TINY, attacks=["identity"])
    card = train(TrainConfig(**config))
    assert (out / STATE).is_file() and card.data["training"]["steps"] == 3
    assert card.data["bits"] == 24 and "validation" in card.data["metrics"]
    marker = wmark.load(out, device="cpu")
    assert marker.bits == 24
    card = train(TrainConfig(**{**config, "steps": 5, "resume": True}))
    assert card.data["training"]["steps"] == 5
    with open(out / "log.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == [1, 2, 3, 4, 5]


def test_train_cli_unknown_family(folder, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["train", "nope", "--data", str(folder), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no training recipe" in result.stderr


def test_train_cli_missing_data(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["train", "hidden", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_decoder_only_through_the_pipeline_keeps_the_encoder(folder, tmp_path):
    first = tmp_path / "first"
    base = dict(family="hidden", data=str(folder), steps=2, batch=2, log_every=1, model_kwargs=TINY, attacks=["identity"])
    train(TrainConfig(out=str(first), **base))
    before = wmark.load(first, device="cpu").model.state_dict()
    second = tmp_path / "second"
    train(TrainConfig(out=str(second), init=str(first), decoder_only=True, pipeline_size=128, **base))
    after = wmark.load(second, device="cpu").model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("decoder") for name in changed)


def test_init_from_another_family_is_refused(folder, untrained_checkpoint, tmp_path):
    with pytest.raises(wmark.WmarkError, match="is a hidden model, not mbrs"):
        train(TrainConfig(family="mbrs", data=str(folder), out=str(tmp_path / "x"), steps=1,
                          init=str(untrained_checkpoint)))
