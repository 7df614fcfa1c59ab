"""The training loop shared by every family.

A family supplies a :class:`~wmark.train.recipes.Recipe`; the loop owns data, the
curriculum, attacks, validation, logging, checkpoints and resuming.
"""
from __future__ import annotations

import csv
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from wmark import pipeline, zoo
from wmark.device import resolve_device
from wmark.errors import WmarkError
from wmark.payload import PayloadCode
from wmark.train.curriculum import Curriculum
from wmark.train.data import ImageCache, load_validation
from wmark.train.recipes import recipe_for
from wmark.train.validate import VALIDATION_ATTACKS, calibrate_strength, validate

STATE = "train_state.pt"


@dataclass
class TrainConfig:
    family: str
    data: str
    out: str
    val: str | None = None
    bits: int | None = None
    size: int | None = None
    steps: int = 10000
    batch: int = 16
    lr: float | None = None
    attacks: list[str] | None = None
    device: str = "auto"
    resume: bool = False
    seed: int = 0
    init: str | None = None
    val_every: int = 500
    log_every: int = 50
    target_psnr: float = 40.0
    pipeline_size: int | None = None
    decoder_only: bool = False
    model_kwargs: dict = field(default_factory=dict)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so state is saved before exit."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = {sig: signal.signal(sig, self._set) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum, frame) -> None:
        self.raised = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _model_kwargs(cfg: TrainConfig, init_card: zoo.Card | None) -> dict:
    """Constructor arguments: the recipe's (or the --init checkpoint's), then explicit overrides."""
    if init_card is not None and init_card.family != cfg.family:
        raise WmarkError(f"--init {init_card.name} is a {init_card.family} model, not {cfg.family}")
    base = init_card.kwargs if init_card is not None else recipe_for(cfg.family).model_kwargs
    kwargs = {**base, **cfg.model_kwargs}
    if cfg.bits is not None:
        kwargs["message_bits"] = cfg.bits
    if cfg.size is not None:
        kwargs["size"] = cfg.size
    return kwargs


def _attack_pool(specs: tuple[str, ...]):
    import attacks

    return [(spec, attacks.create(spec)) for spec in specs]


def train(cfg: TrainConfig) -> zoo.Card:
    """Train (or resume) a model as configured and write its checkpoint folder ``cfg.out``."""
    recipe = recipe_for(cfg.family)
    device = resolve_device(cfg.device)
    init_card = zoo.find_card(cfg.init) if cfg.init else None
    kwargs = _model_kwargs(cfg, init_card)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # weight init draws from the global RNG; keep it reproducible and untouched
        model = zoo.build(cfg.family, **kwargs).to(device)
    print(f"decoding training images from {cfg.data} ...", file=sys.stderr)
    cache = ImageCache(cfg.data, device=device)
    val_images = load_validation(cfg.val) if cfg.val else []
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if init_card is not None:
        model.load_state_dict(zoo.load_model(init_card).state_dict(), strict=True)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if cfg.decoder_only:
        model.freeze_encoder()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.lr if cfg.lr is not None else recipe.lr)
    specs = tuple(cfg.attacks) if cfg.attacks is not None else recipe.attacks
    curriculum = Curriculum(
        warmup_accuracy=recipe.warmup_accuracy,
        ramp_steps=int(recipe.ramp_fraction * cfg.steps),
        attack_specs=specs,
        attack_steps=max(1, int(0.4 * cfg.steps / max(1, len(specs)))),
        image_weight=recipe.image_weight,
        target_psnr=cfg.target_psnr + recipe.psnr_margin,
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if cfg.resume and (out / STATE).is_file():
        state = torch.load(out / STATE, map_location=device, weights_only=True)
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        curriculum.load_state_dict(json.loads(state["curriculum"]))
        generator.set_state(state["rng"].cpu())
        step = int(state["step"])
        print(f"resumed from step {step}, stage {curriculum.stage}", file=sys.stderr)

    pools: dict[tuple[str, ...], list] = {}
    stop = _StopFlag()
    started = time.time()
    log = _CsvLog(out / "log.csv")
    _train_mode(model, cfg)
    try:
        while step < cfg.steps and not stop.raised:
            cover = cache.sample(cfg.batch, cfg.pipeline_size or kwargs["size"], generator)
            x = pipeline.to_native(cover, kwargs["size"])
            bits = torch.randint(0, 2, (cfg.batch, kwargs["message_bits"]), generator=generator).to(device)
            active = curriculum.active_attacks(step)
            pool = pools.setdefault(active, _attack_pool(active))
            spec, attack = pool[int(torch.randint(len(pool), (1,), generator=generator))] if pool else ("identity", None)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                residual = model.residual(x, bits.float() * 2 - 1)
                marked = cover + pipeline.from_native(residual, *cover.shape[-2:])
                clamped = marked.clamp(0, 1)
                quantized = clamped + (torch.round(clamped * 255) / 255 - clamped).detach()
                attacked = quantized
                if attack is not None:
                    params = attack.sample(quantized.shape, generator=generator)
                    attacked = attack(quantized.float(), params=params, cover=cover)
                if cfg.pipeline_size:
                    attacked = pipeline.to_native(attacked, kwargs["size"])
                logits = model.decode(attacked).float()
            message_loss = F.binary_cross_entropy_with_logits(logits, bits.float())
            image_loss = F.mse_loss(marked.float(), cover)
            image_weight = curriculum.current_image_weight(step)
            loss = recipe.message_weight * message_loss + image_weight * image_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            accuracy = float(((logits > 0).long() == bits).float().mean())
            batch_psnr = float(-10 * torch.log10(image_loss.detach().clamp_min(1e-10)))
            note = curriculum.update(step, accuracy, batch_psnr)
            if note:
                print(note, file=sys.stderr)
            row = {}
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {
                    "step": step,
                    "stage": curriculum.stage,
                    "attack": spec,
                    "message_loss": round(message_loss.item(), 5),
                    "image_loss": round(image_loss.item(), 7),
                    "image_weight": round(image_weight, 2),
                    "bit_acc": round(accuracy, 4),
                    "psnr": round(batch_psnr, 2),
                    "elapsed_s": round(time.time() - started, 1),
                }
            if val_images and (step % cfg.val_every == 0 or step == cfg.steps):
                metrics = validate(model, val_images, strength=1.0)
                row.update({k: round(v, 4) for k, v in metrics.items()}, step=step, stage=curriculum.stage)
                _save_state(out, model, optimizer, curriculum, generator, step)
                _train_mode(model, cfg)
            if row:
                log.write(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)
    finally:
        stop.restore()
        _save_state(out, model, optimizer, curriculum, generator, step)
    return _export(cfg, model, kwargs, specs, curriculum, val_images, step, time.time() - started, device)


def _train_mode(model, cfg: TrainConfig) -> None:
    model.train()
    if cfg.decoder_only:
        model.freeze_encoder()


def _save_state(out: Path, model, optimizer, curriculum: Curriculum, generator, step: int) -> None:
    from wmark.io.atomic import atomic_output

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "curriculum": json.dumps(curriculum.state_dict()),
        "rng": generator.get_state(),
        "step": step,
    }
    with atomic_output(out / STATE) as tmp:
        torch.save(state, tmp)


def _export(cfg, model, kwargs, specs, curriculum, val_images, step, seconds, device) -> zoo.Card:
    """Calibrate the default strength on validation images and write the checkpoint."""
    model.eval()
    strength, metrics = 1.0, {}
    if val_images:
        strength = round(calibrate_strength(model, val_images, cfg.target_psnr), 4)
        metrics = {k: round(v, 4) for k, v in validate(model, val_images, strength, VALIDATION_ATTACKS).items()}
    code = PayloadCode(kwargs["message_bits"])
    previous = {}
    if (Path(cfg.out) / zoo.CARD).is_file():
        previous = zoo.read_card(Path(cfg.out)).data.get("training", {})
    card = {
        "name": Path(cfg.out).name,
        "family": cfg.family,
        "kwargs": kwargs,
        "bits": kwargs["message_bits"],
        "data_bits": code.data_bits,
        "capacity_bytes": code.capacity_bytes,
        "payload": code.describe(),
        "size": kwargs["size"],
        "strength": strength,
        "strength_rule": f"median PSNR {cfg.target_psnr} dB on the validation images",
        "training": {
            "data": cfg.data,
            "val": cfg.val,
            "steps": step,
            "batch": cfg.batch,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "seconds": round(previous.get("seconds", 0) + seconds, 1) if cfg.resume else round(seconds, 1),
            "attacks": list(specs),
            "curriculum": curriculum.log,
            "seed": cfg.seed,
            "init": cfg.init,
            "pipeline_size": cfg.pipeline_size,
            "decoder_only": cfg.decoder_only,
        },
        "metrics": {"validation": metrics},
    }
    return zoo.save_checkpoint(Path(cfg.out), model, card)


class _CsvLog:
    """Appends rows to ``log.csv``, widening the header when new columns appear."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, row: dict) -> None:
        rows = []
        if self.path.is_file():
            with open(self.path, newline="") as handle:
                rows = list(csv.DictReader(handle))
        rows.append(row)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
