"""The training loop: curriculum, stages, checkpoint export, resume, time budget, data cache and the CLI."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json

import pytest
import torch
from PIL import Image

import attacks
import wmark
from wmark import zoo
from wmark.train import data, recipes
from wmark.train.budget import Stop, parse_duration
from wmark.train.codec_pool import CodecPool
from wmark.train.curriculum import Curriculum
from wmark.train.data import ImageCache
from wmark.train.loop import STATE, TrainConfig, Trainer, train
from wmark.train.recipes import Stage

TINY = {"message_bits": 24, "size": 64, "channels": 8, "encoder_blocks": 2, "decoder_blocks": 3}
SMALL = {"size": 32, "bits": 8, "batch": 4, "log_every": 1}  # any family at its recipe's settings, shrunk


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    generator = torch.Generator().manual_seed(0)
    for i in range(3):
        pixels = (torch.rand(140, 200, 3, generator=generator) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(root / f"{i}.png")
    return root


def _rows(out) -> list[dict]:
    with open(out / "log.csv") as handle:
        return list(csv.DictReader(handle))


def _weights(out) -> dict:
    return wmark.load(out, device="cpu").model.state_dict()


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


@pytest.fixture
def quick_hidden(monkeypatch):
    """Install a hidden recipe whose curriculum reaches every phase within a few steps (plus ``changes``)."""

    def install(**changes):
        recipe = dataclasses.replace(recipes.RECIPES["hidden"], warmup_accuracy=0.5, ramp_fraction=0.1, **changes)
        monkeypatch.setitem(recipes.RECIPES, "hidden", recipe)

    return install


def _stop_after(monkeypatch, steps: int) -> None:
    """Make the loop stop after ``steps`` steps, as --time or SIGTERM would."""
    checks = itertools.count()

    def due(self, reserve=0.0):
        if next(checks) >= steps:
            self.reason = "SIGTERM"
        return self.reason is not None

    monkeypatch.setattr(Stop, "due", due)


def _cli(*args):
    from typer.testing import CliRunner

    from cli import app

    return CliRunner().invoke(app, ["train", *map(str, args)])


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


def test_a_trained_pair_continues_in_the_attack_stage_with_its_whole_pool():
    plan = Curriculum(warmup_accuracy=0.9, ramp_steps=10, attack_specs=("identity", "jpeg", "blur"), attack_steps=5,
                      image_weight=0.01, target_psnr=40.0)
    plan.continue_trained(image_weight=30.0)
    assert plan.stage == "attacks" and plan.active_attacks(0) == ("identity", "jpeg", "blur")
    assert plan.current_image_weight(0) == pytest.approx(30.0)
    assert plan.update(1, 0.5, 40.0) is None and plan.stage == "attacks", "no stage goes back to the warm-up"


def test_init_from_a_checkpoint_past_its_warm_up_starts_with_every_attack(folder, tmp_path, quick_hidden):
    quick_hidden()
    config = dict(family="hidden", data=str(folder), attacks=["identity", "blur:sigma=0.1-2", "noise:std=0-0.02"],
                  **SMALL)
    first = train(TrainConfig(out=str(tmp_path / "first"), steps=40, **config)).data["training"]
    assert first["curriculum_stage"] == "attacks" and first["image_weight"] > 0
    second = train(TrainConfig(out=str(tmp_path / "second"), steps=6, init=str(tmp_path / "first"), **config))
    assert second.data["training"]["curriculum"][0].startswith("step 0: curriculum attacks, all 3 at once")
    rows = [row for row in _rows(tmp_path / "second") if not row.get("event")]
    assert all(row["curriculum"] == "attacks" for row in rows)
    assert float(rows[0]["image_weight"]) == pytest.approx(first["image_weight"], rel=0.05)
    assert len({row["attack"] for row in rows}) > 1, "the whole pool is drawn from the first step"


def test_init_from_a_checkpoint_still_in_its_warm_up_warms_up_again(folder, tmp_path):
    config = dict(family="hidden", data=str(folder), attacks=["identity"], **SMALL)
    train(TrainConfig(out=str(tmp_path / "first"), steps=2, **config))
    second = train(TrainConfig(out=str(tmp_path / "second"), steps=2, init=str(tmp_path / "first"), **config))
    assert second.data["training"]["curriculum_stage"] == "message" and second.data["training"]["curriculum"] == []


def test_psnr_floor_is_recorded_and_checked(folder, tmp_path):
    config = dict(family="hidden", data=str(folder), attacks=["identity"], **SMALL)
    card = train(TrainConfig(out=str(tmp_path / "floor"), steps=2, psnr_floor=32.0, **config))
    assert card.data["training"]["psnr_floor"] == 32.0
    result = _cli("hidden", "--data", folder, "--out", tmp_path / "bad", "--psnr-floor", -3)
    assert result.exit_code == 2 and "--psnr-floor must be between 0 and 100 dB" in result.stderr
    assert not (tmp_path / "bad").exists()


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
    result = _cli("nope", "--data", folder, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "no training recipe" in result.stderr


def test_train_cli_missing_data(tmp_path):
    result = _cli("hidden", "--data", tmp_path / "none", "--out", tmp_path / "x")
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
    resumed = train(TrainConfig(out=str(second), resume=True, decoder_only=True, pipeline_size=128, **{**base, "steps": 3}))
    assert resumed.data["training"]["init"] == str(first)  # a resumed run's card still names its starting point


def test_init_from_another_family_is_refused(folder, untrained_checkpoint, tmp_path):
    with pytest.raises(wmark.WmarkError, match="is a hidden model, not mbrs"):
        train(TrainConfig(family="mbrs", data=str(folder), out=str(tmp_path / "x"), steps=1,
                          init=str(untrained_checkpoint)))


@pytest.mark.parametrize("family", zoo.families())
def test_every_family_learns_and_exports(family, folder, tmp_path):
    out = tmp_path / family
    card = train(TrainConfig(family=family, data=str(folder), out=str(out), steps=30, attacks=["identity"], **SMALL))
    steps = 30 * len(recipes.RECIPES[family].stages)
    losses = [float(row["loss"]) for row in _rows(out) if not row.get("event")]
    assert len(losses) == steps and sum(losses[-5:]) < sum(losses[:5])
    assert card.data["training"]["steps"] == steps
    assert wmark.load(out, device="cpu").bits == 8


@pytest.mark.parametrize("changes", [{}, {"image_loss": "yuv_ssim", "critic_weight": 0.5}], ids=["mse", "critic"])
def test_resume_continues_exactly(folder, tmp_path, monkeypatch, quick_hidden, changes):
    """A stopped run resumed gives the same weights as one straight run (the critic's state included)."""
    quick_hidden(**changes)
    config = dict(family="hidden", data=str(folder), steps=16, attacks=["identity", "jpeg:quality=50-90"],
                  codec_workers=2, **SMALL)
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **config))
    events = straight.data["training"]["curriculum"]
    assert any("curriculum attacks" in note for note in events), "the run should cross every curriculum phase"
    assert [row["event"] for row in _rows(tmp_path / "straight") if row["event"]] == events
    with monkeypatch.context() as patch:
        _stop_after(patch, 7)
        stopped = train(TrainConfig(out=str(tmp_path / "resumed"), **config))
    assert stopped.data["training"]["steps"] == 7 and stopped.data["training"]["stopped"] == "SIGTERM"
    resumed = train(TrainConfig(out=str(tmp_path / "resumed"), resume=True, **config))
    assert resumed.data["training"]["steps"] == 16 and resumed.data["training"]["curriculum"] == events
    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    assert all((row.get("critic_loss") not in (None, "")) == bool(changes) for row in _rows(tmp_path / "straight"))
    if changes:  # the critic itself resumes too, not only the model it trains
        states = [torch.load(tmp_path / run / STATE, weights_only=True)["adversary"]["critic"]
                  for run in ("straight", "resumed")]
        assert _same_weights(*states)


def test_stages_run_in_order_and_resume_exactly(folder, tmp_path, monkeypatch, quick_hidden):
    quick_hidden(stages=(Stage("joint", attacks=("identity",)),
                         Stage("decoder", decoder_only=True, attacks=("jpeg:quality=50-90",))))
    config = dict(family="hidden", data=str(folder), steps=5, **SMALL)
    card = train(TrainConfig(out=str(tmp_path / "straight"), **config)).data["training"]
    assert card["steps"] == 10 and card["stage"] is None
    assert [(s["name"], s["decoder_only"], s["attacks"]) for s in card["stages"]] == [
        ("joint", False, ["identity"]), ("decoder", True, ["jpeg:quality=50-90"])]
    assert "stage 2 (decoder, decoder only)" in card["curriculum"]
    assert {row["stage"] for row in _rows(tmp_path / "straight")} == {"1", "2"}
    with monkeypatch.context() as patch:
        _stop_after(patch, 7)
        train(TrainConfig(out=str(tmp_path / "resumed"), **config))
    train(TrainConfig(out=str(tmp_path / "resumed"), resume=True, **config))
    assert _same_weights(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))

    with pytest.raises(wmark.WmarkError, match="needs a trained encoder"):
        train(TrainConfig(out=str(tmp_path / "alone"), stage=2, **config))
    second = train(TrainConfig(out=str(tmp_path / "second"), stage=2, init=str(tmp_path / "straight"), **config))
    assert second.data["training"]["stage"] == 2 and second.data["training"]["steps"] == 5
    before, after = _weights(tmp_path / "straight"), _weights(tmp_path / "second")
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("decoder"))


def test_tsdl_trains_without_noise_then_the_decoder_alone_on_real_attacks(folder, tmp_path):
    out = tmp_path / "tsdl"
    card = train(TrainConfig(family="tsdl", data=str(folder), val=str(folder), out=str(out), steps=3,
                             attacks=["jpeg:quality=50"], **SMALL)).data
    stages = [(s["name"], s["decoder_only"], s["attacks"]) for s in card["training"]["stages"]]
    assert stages == [("FEAT", False, []), ("ADOT", True, ["jpeg:quality=50"])]
    attacks_by_stage = {(row["stage"], row["attack"]) for row in _rows(out) if not row.get("event")}
    assert attacks_by_stage == {("1", "identity"), ("2", "jpeg:quality=50")}
    assert card["strength"] == 1.0 and card["strength_rule"] == "the trained strength"


def test_tsdl_stage_two_alone_retrains_only_the_decoder_for_a_new_attack(folder, tmp_path):
    first = tmp_path / "first"
    train(TrainConfig(family="tsdl", data=str(folder), out=str(first), steps=2, **SMALL))
    result = _cli("tsdl", "--data", folder, "--out", tmp_path / "h264", "--stage", 2, "--init", first,
                  "--attack", "h264:crf=30", "--steps", 2, "--batch", 2, "--size", 32, "--bits", 8)
    assert result.exit_code == 0, result.output
    card = zoo.read_card(tmp_path / "h264").data["training"]
    assert card["stage"] == 2 and card["stages"] == [
        {"stage": 2, "name": "ADOT", "decoder_only": True, "attacks": ["h264:crf=30"]}]
    before, after = _weights(first), _weights(tmp_path / "h264")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("decoder") for name in changed)


def test_attack_option_that_reaches_only_noise_free_stages_is_refused(folder, tmp_path):
    result = _cli("tsdl", "--data", folder, "--out", tmp_path / "x", "--stage", 1, "--attack", "jpeg")
    assert result.exit_code == 2 and "--attack reaches no stage" in result.stderr


@pytest.mark.parametrize("batch, unmarked", [(1, 0), (2, 1), (4, 1), (16, 4)])
def test_unmarked_rows_leave_at_least_one_marked(folder, tmp_path, batch, unmarked):
    trainer = Trainer(TrainConfig(family="tsdl", data=str(folder), out=str(tmp_path / "x"), batch=batch))
    assert trainer.marked_rows == batch - unmarked


def test_unmarked_share_of_the_batch_reaches_the_decoder_unmarked(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "hidden", dataclasses.replace(recipes.RECIPES["hidden"], unmarked_fraction=0.5))
    covers, seen, targets = [], [], []
    sample = ImageCache.sample
    monkeypatch.setattr(ImageCache, "sample", lambda self, *a: covers.append(sample(self, *a)) or covers[-1])
    decode = wmark.models.hidden.HiDDeN.decode
    monkeypatch.setattr(wmark.models.hidden.HiDDeN, "decode", lambda self, x: seen.append(x.detach()) or decode(self, x))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    monkeypatch.setattr(torch.nn.functional, "binary_cross_entropy_with_logits",
                        lambda logits, target: targets.append(target) or bce(logits, target))
    train(TrainConfig(family="hidden", data=str(folder), out=str(tmp_path / "x"), steps=1, model_kwargs=TINY,
                      attacks=["identity"], batch=4, log_every=1))
    assert torch.all(targets[0][2:] == 0.5) and set(targets[0][:2].flatten().tolist()) <= {0.0, 1.0}
    assert torch.allclose(seen[0][2:], covers[0][2:], atol=1e-6)
    assert not torch.allclose(seen[0][:2], covers[0][:2], atol=1e-3)


def test_cli_stage_that_does_not_exist(folder, tmp_path):
    result = _cli("hidden", "--data", folder, "--out", tmp_path / "x", "--stage", 2)
    assert result.exit_code == 2 and "hidden has no training stage 2" in result.stderr


def test_cli_time_budget_stops_saves_and_exports(folder, tmp_path):
    out = tmp_path / "budget"
    result = _cli("hidden", "--data", folder, "--out", out, "--steps", 10**6, "--batch", 4, "--size", 32,
                  "--bits", 8, "--device", "cpu", "--time", "1s")
    assert result.exit_code == 0, result.output
    training = json.loads((out / "card.json").read_text())["training"]
    assert training["stopped"] == "time budget" and training["time_budget_s"] == 1.0
    assert 0 < training["steps"] < 10**6 and (out / STATE).is_file()
    assert wmark.load(out, device="cpu").bits == 8


@pytest.mark.parametrize("text, seconds", [("45m", 2700), ("90s", 90), ("2h", 7200), ("1h30m", 5400), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "45", "abc", "0m", "1m2h"])
def test_bad_duration_is_a_user_error(text):
    with pytest.raises(wmark.WmarkError, match="bad time budget"):
        parse_duration(text)


def test_cli_model_args_reach_the_constructor(folder, tmp_path):
    out = tmp_path / "hh"
    result = _cli("dwtcnn", "--data", folder, "--out", out, "--steps", 2, "--batch", 2, "--bits", 8,
                  "--device", "cpu", "--model-arg", "subband=HH", "--model-arg", "channels=4")
    assert result.exit_code == 0, result.output
    kwargs = json.loads((out / "card.json").read_text())["kwargs"]
    assert kwargs["subband"] == "HH" and kwargs["channels"] == 4


@pytest.mark.parametrize("arg, message", [("subband", "takes KEY=VALUE"), ("colour=1", "colour")])
def test_cli_bad_model_arg(folder, tmp_path, arg, message):
    result = _cli("dwtcnn", "--data", folder, "--out", tmp_path / "x", "--model-arg", arg)
    assert result.exit_code == 2 and message in result.stderr


def test_cli_bad_time_budget(folder, tmp_path):
    result = _cli("hidden", "--data", folder, "--out", tmp_path / "x", "--time", "soon")
    assert result.exit_code == 2 and "bad time budget 'soon'" in result.stderr


def test_disk_cache_is_decoded_once_and_memory_mapped(folder, tmp_path, monkeypatch):
    first = ImageCache(folder, disk=tmp_path)
    assert len(list(tmp_path.glob("decoded-*.npy"))) == 1
    monkeypatch.setattr(data, "read_image", lambda path: pytest.fail("decoded again"))
    second = ImageCache(folder, disk=tmp_path)
    assert all(a.dtype == torch.uint8 and torch.equal(a, b) for a, b in zip(first.images, second.images))
    views = [cache.sample(4, 32, torch.Generator().manual_seed(1)) for cache in (first, second)]
    assert torch.equal(*views) and views[0].shape == (4, 3, 32, 32)


@pytest.mark.parametrize("spec", ["jpeg:quality=30-90", "webp:quality=50-90", "jpeg_mix:quality=50", "h264:crf=20-30"])
def test_codec_pool_matches_one_call(spec):
    attack, generator = attacks.create(spec), torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 32, 32, generator=generator).requires_grad_()
    params = attack.sample(x.shape, generator)
    while params.get("index", 0) != 0:  # jpeg_mix: take a batch that goes through the real JPEG
        params = attack.sample(x.shape, generator)
    pool = CodecPool(2)
    pooled = pool(attack, x, params, x)
    pool.close()
    assert torch.equal(pooled, attack(x, params=params, cover=x))
    pooled.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x)), "straight-through gradient"


@pytest.mark.parametrize("spec, trained, untouched", [
    ("jpeg:quality=50", {"decoder_robust"}, {"decoder_message"}),
    ("noise:std=0.02", {"decoder_message", "decoder_robust"}, set()),
])
def test_cin_real_codec_batches_train_the_robust_branch_alone_and_the_others_both(
        folder, tmp_path, spec, trained, untouched):
    trainer = Trainer(TrainConfig(family="cin", data=str(folder), out=str(tmp_path / "x"), attacks=[spec], **SMALL))
    trainer.begin(*trainer.stages[0])
    trainer.curriculum.stage = "attacks"
    before = {name: value.clone() for name, value in trainer.model.named_parameters()}
    trainer.step()  # both branches run on every batch (the selector's label), so batch-norm statistics move in both
    after = dict(trainer.model.named_parameters())
    changed = {name.split(".")[0] for name in before if not torch.equal(before[name], after[name])}
    assert trained | {"decoder_selector", "couplings"} <= changed and not untouched & changed
