"""Training through an embedding domain (issue 40): the domain settings, the tiles' targets, the gradient that
reaches the encoder, the FLIP-steered dual ascent, and a run that exports a card carrying its domain."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import wmark
from wmark import zoo
from wmark.domain import Domain
from wmark.errors import WmarkError
from wmark.io.image import from_uint8
from wmark.train import in_domain
from wmark.train.curriculum import Curriculum
from wmark.train.loop import TrainConfig, train

SETTINGS = "tiles=16:0.6+3+8:0.6@1400,classes=3,luma,jnd,patterns,template=0.35"
TINY_MBRS = {"message_bits": 16, "size": 32, "channels": 8, "plane": 8, "blocks": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_settings_and_a_card_name_give_the_same_domain():
    assert in_domain.domain_for_training(SETTINGS) == Domain.from_dict(zoo.find_card("mbrs-64-tiled").data["domain"])
    assert in_domain.domain_for_training("mbrs-64-tiled") == in_domain.domain_for_training(SETTINGS)


@pytest.mark.parametrize("spec, message", [("tiles=16:x", "a band is TILES"), ("tiles=4,colour", "cannot read"),
                                           ("mbrs-64", "records no embedding domain")])
def test_bad_domain_settings_are_user_errors(spec, message):
    with pytest.raises(WmarkError, match=message):
        in_domain.domain_for_training(spec)


def test_each_sampled_tile_is_labelled_with_the_bits_its_part_carries(photo):
    """Marked through the default's domain, the committed decoder reads the sampled tiles as their targets say."""
    card = zoo.find_card("mbrs-64-tiled")
    model, domain = zoo.load_model(card).eval(), Domain.from_dict(card.data["domain"])
    cover = from_uint8(np.asarray(Image.open(photo).convert("RGB")))[None]
    generator = torch.Generator().manual_seed(0)
    parts = torch.randint(0, 2, (1, domain.classes, model.message_bits), generator=generator).float() * 2 - 1
    with torch.no_grad():
        marked = in_domain.mark(model, domain, cover, parts, 2 * card.data["strength"], marked_rows=1)
        tiles, targets = in_domain.tile_sample(model, domain, marked.clamp(0, 1), parts, 1, generator)
        agreement = ((model.decode(tiles) > 0).float() == targets).float().mean()
    counts = [grid.count for grid, _, _ in domain.tiles(cover, model.size, model.message_bits)]
    assert len(tiles) == sum(min(count, in_domain.TILES_PER_BAND) for count in counts) and agreement > 0.9


def test_the_message_loss_reaches_the_encoder_through_the_domain():
    model = zoo.build("mbrs", **TINY_MBRS)
    domain = in_domain.domain_for_training("tiles=4+2,classes=2,luma,jnd,patterns,template=0.35")
    cover = torch.rand(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    parts = torch.ones(2, 2, 16)
    marked = in_domain.mark(model, domain, cover, parts, 1.0, marked_rows=1)
    assert torch.equal(marked[1], cover[1]), "rows past marked_rows stay unmarked"
    tiles, targets = in_domain.tile_sample(model, domain, marked, parts, 1, torch.Generator().manual_seed(0))
    assert (targets[len(targets) // 2:] == 0.5).all() or (targets == 0.5).any()
    F.binary_cross_entropy_with_logits(model.decode(tiles), targets).backward()
    encoder = [p for name, p in model.named_parameters() if not name.startswith("decoder")]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder)


def test_a_flip_target_steers_the_image_weight_by_the_flip_error_not_the_psnr():
    plan = Curriculum(warmup_accuracy=0.9, ramp_steps=10, attack_specs=("identity",), attack_steps=5,
                      image_weight=1.0, target_psnr=40.0, target_flip=0.5)
    plan.continue_trained(None)
    before = plan.log_weight
    plan.update(1, 1.0, psnr=60.0, flip_error_db=3.0)
    assert plan.log_weight > before, "too visible by FLIP: the weight grows, whatever the PSNR"
    plan.update(2, 1.0, psnr=20.0, flip_error_db=-6.0)
    assert plan.log_weight < before


def test_the_proportional_term_damps_a_lagging_response():
    """Marks follow the weight over about 200 steps: the integral alone overshoots, the PI update settles."""
    def mean_error_after_warmup(proportional: float) -> float:
        plan = Curriculum(warmup_accuracy=0.9, ramp_steps=10, attack_specs=("identity",), attack_steps=5,
                          image_weight=0.5, target_psnr=40.0, target_flip=0.5, proportional=proportional)
        plan.continue_trained(None)
        followed, errors = plan.log_weight, []
        for step in range(1200):
            followed += (math.log(plan.full_image_weight()) - followed) / 200
            error = 8 * (math.log(50) - followed)  # dB too visible while the weight is under its balance, 50
            plan.update(step, 1.0, psnr=40.0, flip_error_db=error)
            errors.append(abs(error))
        return sum(errors[300:]) / len(errors[300:])
    assert mean_error_after_warmup(0.2) < mean_error_after_warmup(0.0) / 2


def test_a_run_through_the_domain_exports_a_card_that_carries_it(tmp_path, photo):
    val = tmp_path / "val"
    val.mkdir()
    Image.open(photo).convert("RGB").resize((256, 144)).save(val / "photo.png")
    out = tmp_path / "through-domain"
    card = train(TrainConfig(family="mbrs", data=str(photo.parent), val=str(val), out=str(out), steps=3, batch=2,
                             val_every=3, log_every=1, model_kwargs=TINY_MBRS, attacks=["jpeg:quality=50-90"],
                             domain="tiles=4+2,classes=2,luma,jnd,patterns,template=0.35", frame=96,
                             target_flip=0.6))
    assert card.data["domain"]["classes"] == 2 and card.data["bits"] == 32
    assert card.data["strength_rule"] == "median FLIP 0.6 x a JPEG 75 re-save's on the validation images (whole pictures)"
    assert card.data["metrics"]["validation"]["flip_ratio"] == pytest.approx(0.6, rel=0.1)
    with open(out / "log.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if not row.get("event")]
    assert all(row["flip_db"] for row in rows) and "val_bit_acc[webp:quality=50]" in rows[-1]
    assert wmark.load(out, device="cpu").bits == 32
    # A FLIP run from a FLIP run's card goes on from the image-loss weight its dual ascent had reached.
    data = json.loads((out / zoo.CARD).read_text())
    data["training"].update(image_weight=7.5, curriculum_stage="attacks")  # as if a long run had got there
    (out / zoo.CARD).write_text(json.dumps(data))
    again = train(TrainConfig(family="mbrs", data=str(photo.parent), out=str(tmp_path / "again"), steps=1, batch=2,
                              log_every=1, model_kwargs=TINY_MBRS, attacks=["jpeg:quality=50-90"], init=str(out),
                              domain="tiles=4+2,classes=2,luma,jnd,patterns,template=0.35", frame=96,
                              target_flip=0.6))
    with open(tmp_path / "again" / "log.csv") as handle:
        first = next(row for row in csv.DictReader(handle) if not row.get("event"))
    assert float(first["image_weight"]) == pytest.approx(7.5, rel=0.01)


def test_cli_refuses_a_domain_with_the_pipeline(tmp_path, photo):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["train", "mbrs", "--data", str(photo.parent), "--out", str(tmp_path / "x"),
                                      "--domain", SETTINGS, "--pipeline-size", "128"])
    assert result.exit_code == 2 and "leave out --pipeline-size" in result.stderr
    assert not (tmp_path / "x").exists()
