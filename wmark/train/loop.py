"""The training loop shared by every family.

A family supplies a :class:`~wmark.train.recipes.Recipe`; the loop owns data, stages, the
curriculum, attacks, validation, logging, checkpoints, resuming and the time budget.
"""
from __future__ import annotations

import json
import math
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
from wmark.train.budget import Stop
from wmark.train.codec_pool import CodecPool
from wmark.train.critic import Adversary
from wmark.train.curriculum import Curriculum
from wmark.train import in_domain
from wmark.train.data import ImageCache, load_validation
from wmark.train.image_loss import IMAGE_LOSSES, floor_penalty
from wmark.train.recipes import Stage, recipe_for, select_stages
from wmark.train.report import CsvLog, ProgressBar
from wmark.train.validate import (DOMAIN_VALIDATION_ATTACKS, VALIDATION_ATTACKS, calibrate_flip_strength,
                                  calibrate_strength, validate)
from wmark.perception.calibrate import jpeg_flip
from wmark.train.visibility import flip_error_db, flip_loss

STATE = "train_state.pt"


@dataclass
class TrainConfig:
    family: str
    data: str
    out: str
    val: str | None = None
    bits: int | None = None
    size: int | None = None
    steps: int = 10000  # per stage
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
    stage: int | None = None  # run only this stage of the recipe (from 1); None runs them all
    time_budget: float | None = None  # wall-clock seconds for the whole run; training stops in time to export
    cache: str | None = None  # folder for the decoded-image cache
    codec_workers: int = 0  # threads for real codecs inside the loop (< 2: none)
    model_kwargs: dict = field(default_factory=dict)
    psnr_floor: float | None = None  # dB: images under it pay image_loss.floor_penalty
    domain: str | None = None  # train through this embedding domain (in_domain.domain_for_training)
    frame: int = 256  # side of the frames marked through the domain
    target_flip: float | None = None  # image loss FLIP, steered to this ratio to a JPEG 75 re-save's
    strength: float | None = None  # strength frames are marked at through the domain (None: --init's, else 1)


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
    return Trainer(cfg).run()


class Trainer:
    """One training run: :meth:`run` does it all; :meth:`begin` and :meth:`step` let benchmarks time steps."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.started = time.monotonic()  # the time budget counts from here, image decoding included
        for option, value in (("--steps", cfg.steps), ("--batch", cfg.batch), ("--val-every", cfg.val_every)):
            if value < 1:
                raise WmarkError(f"{option} must be at least 1, got {value}")
        if cfg.psnr_floor is not None and not 0 < cfg.psnr_floor < 100:
            raise WmarkError(f"--psnr-floor must be between 0 and 100 dB, got {cfg.psnr_floor}")
        if cfg.target_flip is not None and not cfg.target_flip > 0:
            raise WmarkError(f"--target-flip must be a positive ratio, got {cfg.target_flip}")
        if cfg.domain and cfg.pipeline_size:
            raise WmarkError("--domain trains on whole frames of --frame px: leave out --pipeline-size")
        self.cfg = cfg
        self.recipe = recipe_for(cfg.family)
        self.stages = select_stages(cfg.family, cfg.stage)
        self.device = resolve_device(cfg.device)
        init_card = zoo.find_card(cfg.init) if cfg.init else None
        self.init_training = init_card.data.get("training", {}) if init_card is not None else {}
        self.kwargs = _model_kwargs(cfg, init_card)
        self.domain = in_domain.domain_for_training(cfg.domain) if cfg.domain else None
        if self.domain is not None and cfg.frame < self.kwargs["size"]:
            raise WmarkError(f"--frame must be at least the model's size, {self.kwargs['size']} px, got {cfg.frame}")
        in_card_domain = init_card is not None and init_card.data.get("domain")
        self.strength = cfg.strength or (float(init_card.data["strength"]) if self.domain and in_card_domain else 1.0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # weight init draws from the global RNG; keep it reproducible and untouched
            self.model = zoo.build(cfg.family, **self.kwargs).to(self.device)
            self.adversary = Adversary(self.device) if self.recipe.critic_weight > 0 else None
        self.out = Path(cfg.out)
        resumable = cfg.resume and (self.out / STATE).is_file()
        self.state = torch.load(self.out / STATE, map_location=self.device, weights_only=True) if resumable else None
        done = self.state.get("stage", 1) if self.state else 1  # stages before the saved one are finished
        self.todo = [(number, stage) for number, stage in self.stages if number >= done]
        if cfg.attacks and not any(self.specs(stage) for _, stage in self.stages):
            raise WmarkError(f"--attack reaches no stage: {cfg.family} stage {self.stages[0][0]} trains without noise")
        if self.todo and (cfg.decoder_only or self.todo[0][1].decoder_only) and init_card is None and not resumable:
            raise WmarkError("training the decoder alone needs a trained encoder: give --init CKPT")
        print(f"loading training images from {cfg.data} ...", file=sys.stderr)
        self.cache = ImageCache(cfg.data, device=self.device, disk=cfg.cache)
        self.val_images = load_validation(cfg.val) if cfg.val else []
        self.out.mkdir(parents=True, exist_ok=True)
        if init_card is not None:
            self.model.load_state_dict(zoo.load_model(init_card).state_dict(), strict=True)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.total_steps, self.events = 0, []
        if self.state is not None:
            self.model.load_state_dict(self.state["model"], strict=True)
            self.generator.set_state(self.state["rng"].cpu())
            self.total_steps = int(self.state.get("total_steps", self.state["step"]))
            self.events = list(self.state.get("events", json.loads(self.state["curriculum"]).get("log", [])))
            if self.adversary is not None and "adversary" in self.state:
                self.adversary.load_state_dict(self.state["adversary"])
        self.log = CsvLog(self.out / "log.csv")
        self.bar = ProgressBar()
        self.codecs = CodecPool(cfg.codec_workers)
        self.pools: dict[tuple[str, ...], list] = {}  # attack pools by the curriculum's active specs
        self.val_seconds, self.last_val = 0.0, {}
        self.number, self.decoder_only, self.step_in_stage = None, cfg.decoder_only, 0
        self.optimizer: torch.optim.Optimizer | None = None
        unmarked = math.ceil(self.recipe.unmarked_fraction * cfg.batch)
        self.marked_rows = cfg.batch - min(unmarked, cfg.batch - 1)  # the rest go to the decoder unmarked
        self.curriculum: Curriculum | None = None

    def specs(self, stage: Stage) -> tuple[str, ...]:
        """The attacks of ``stage``: --attack, else the stage's, else the recipe's; a noise-free stage stays so."""
        if stage.attacks == ():
            return ()
        if self.cfg.attacks is not None:
            return tuple(self.cfg.attacks)
        return stage.attacks if stage.attacks is not None else self.recipe.attacks

    def run(self) -> zoo.Card:
        """Run the remaining stages until done, out of time or signalled; save the state, then export."""
        stop = Stop(self.cfg.time_budget, self.started)
        try:
            with self.bar:
                for number, stage in self.todo:
                    self.begin(number, stage)
                    while self.step_in_stage < self.cfg.steps and not stop.due(reserve=2 * self.val_seconds):
                        self.step()
                    if stop.reason:
                        print(f"stopping at stage {number} step {self.step_in_stage}: {stop.reason}", file=sys.stderr)
                        break
        finally:
            stop.restore()
            self.codecs.close()
            if self.optimizer is not None:
                self._save_state()
        return self._export(stop.reason)

    def begin(self, number: int, stage: Stage) -> None:
        """Enter stage ``number``: its trainable modules, optimizer and curriculum (the saved ones on resume)."""
        cfg, recipe = self.cfg, self.recipe
        self.number, self.decoder_only = number, cfg.decoder_only or stage.decoder_only
        self._train_mode()
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=cfg.lr if cfg.lr is not None else recipe.lr)
        specs = self.specs(stage)
        self.curriculum = Curriculum(
            warmup_accuracy=recipe.warmup_accuracy,
            warmup_image_fraction=recipe.warmup_image_fraction,
            ramp_steps=int(recipe.ramp_fraction * cfg.steps),
            attack_specs=specs,
            attack_steps=max(1, int(0.4 * cfg.steps / max(1, len(specs)))),
            image_weight=recipe.image_weight,
            target_psnr=cfg.target_psnr + recipe.psnr_margin,
            target_flip=cfg.target_flip,
            stage="attacks" if self.decoder_only and specs else "message",  # a trained pair needs no warm-up
        )
        self.step_in_stage = 0
        state, self.state = self.state, None
        if state is not None and state.get("stage", 1) == number:
            self.optimizer.load_state_dict(state["optimizer"])
            self.curriculum.load_state_dict(json.loads(state["curriculum"]))
            self.step_in_stage = int(state["step"])
            print(f"resumed stage {number} at step {self.step_in_stage}, curriculum {self.curriculum.stage}",
                  file=sys.stderr)
        else:
            if len(recipe.stages) > 1:
                self._event(f"stage {number} ({stage.name}{', decoder only' if self.decoder_only else ''})",
                            {"step": 0})
            if number == self.todo[0][0] and self._init_reached_attacks():
                same_loss = (cfg.target_flip is None) == (self.init_training.get("target_flip") is None)
                self.curriculum.continue_trained(self.init_training.get("image_weight") if same_loss else None)
                self._event(f"step 0: curriculum attacks, all {len(specs)} at once (--init {cfg.init} had "
                            "reached them)", {"step": 0})

    def _init_reached_attacks(self) -> bool:
        """Whether the --init checkpoint's own training ended in the curriculum's attack stage."""
        history = self.init_training
        if "curriculum_stage" in history:
            return history["curriculum_stage"] == "attacks"
        notes = history.get("curriculum", [])
        return any(f"{word} attacks" in note for note in notes for word in ("curriculum", "stage"))  # older: "stage"

    def step(self) -> None:
        """One optimisation step of the current stage; logs, validates and saves the state when due."""
        cfg, device, generator = self.cfg, self.device, self.generator
        marks = self.marked_rows
        active = self.curriculum.active_attacks(self.step_in_stage)
        pool = self.pools.setdefault(active, _attack_pool(active))
        spec, attack = pool[int(torch.randint(len(pool), (1,), generator=generator))] if pool else ("identity", None)
        heavy = attack is not None and attack.grad in ("ste", "none")  # a real, non-differentiable codec
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            read = self._through_domain if self.domain is not None else self._whole_images
            cover, marked, quantized, logits, targets, extra_loss = read(attack, heavy)
            logits = logits.float()
        labelled = targets[:, 0] != 0.5  # rows of marked images (unmarked ones have targets of 0.5)
        message_loss = F.binary_cross_entropy_with_logits(logits, targets)
        distortion = F.mse_loss(marked[:marks].float(), cover[:marks])  # the dual ascent steers by its PSNR
        flip_db = None
        if cfg.target_flip is not None:
            image_loss = flip_loss(marked[:marks].float(), cover[:marks])
            flip_db = flip_error_db(image_loss.item(), jpeg_flip(cover[:marks]), cfg.target_flip)
        else:
            image_loss = IMAGE_LOSSES[self.recipe.image_loss](marked[:marks].float(), cover[:marks])
        if cfg.psnr_floor is not None:
            image_loss = image_loss + floor_penalty(marked[:marks].float(), cover[:marks], cfg.psnr_floor)
        image_weight = self.curriculum.current_image_weight(self.step_in_stage)
        loss = self.recipe.message_weight * message_loss + image_weight * image_loss
        if extra_loss is not None:
            loss = loss + extra_loss.float()
        train_critic = self.adversary is not None and not self.decoder_only
        if train_critic:
            critic_weight = self.recipe.critic_weight * self.curriculum.ramp(self.step_in_stage)
            loss = loss + critic_weight * self.adversary.encoder_loss(quantized[:marks].float())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        critic_loss = self.adversary.update(quantized[:marks].float(), cover[:marks]) if train_critic else None
        self.step_in_stage += 1
        self.total_steps += 1
        step = self.step_in_stage
        accuracy = float(((logits[labelled] > 0).float() == targets[labelled]).float().mean())
        batch_psnr = float(-10 * torch.log10(distortion.detach().clamp_min(1e-10)))
        note = self.curriculum.update(step, accuracy, batch_psnr, flip_db)
        row = {
            "step": step,
            "stage": self.number,
            "curriculum": self.curriculum.stage,
            "attack": spec,
            "loss": round(loss.item(), 5),
            "message_loss": round(message_loss.item(), 5),
            "image_loss": round(image_loss.item(), 7),
            "image_weight": float(f"{image_weight:.3g}"),
            **({} if extra_loss is None else {"extra_loss": round(extra_loss.item(), 5)}),
            **({} if critic_loss is None else {"critic_loss": round(critic_loss, 5)}),
            "bit_acc": round(accuracy, 4),
            "psnr": round(batch_psnr, 2),
            **({} if flip_db is None else {"flip_db": round(flip_db, 2)}),
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }
        last = step == cfg.steps
        due = step % cfg.log_every == 0 or last
        if self.val_images and (step % cfg.val_every == 0 or last):
            row.update(self._validate())
            self._save_state()
            due = True
        if note:
            self._event(note, row)
        elif due:
            self._write(row)
        self._show(row)

    def _whole_images(self, attack, heavy: bool) -> tuple:
        """Cover, marked, quantized images, logits, targets and the family's extra loss of a batch marked whole
        at the native size (or through the any-resolution pipeline on ``--pipeline-size`` crops)."""
        cfg, size, generator = self.cfg, self.kwargs["size"], self.generator
        cover = self.cache.sample(cfg.batch, cfg.pipeline_size or size, generator)
        x = pipeline.to_native(cover, size)
        bits = torch.randint(0, 2, (cfg.batch, self.kwargs["message_bits"]), generator=generator).to(self.device)
        targets = bits.float()
        targets[self.marked_rows:] = 0.5
        with torch.set_grad_enabled(not self.decoder_only):  # a frozen encoder needs no graph
            residual = self.model.residual(x[:self.marked_rows], bits[:self.marked_rows].float() * 2 - 1)
        if self.marked_rows < cfg.batch:
            residual = torch.cat([residual, torch.zeros_like(x[self.marked_rows:], dtype=residual.dtype)])
        marked = cover + pipeline.from_native(residual, *cover.shape[-2:])
        quantized, attacked = self._attacked(marked, cover, attack)
        if cfg.pipeline_size:
            attacked = pipeline.to_native(attacked, size)
        return (cover, marked, quantized, *self._decoded(attacked, heavy, targets))

    def _through_domain(self, attack, heavy: bool) -> tuple:
        """The same for frames of ``--frame`` px marked through the domain and read a sample of tiles at a time
        (:mod:`wmark.train.in_domain`)."""
        cfg, generator, domain = self.cfg, self.generator, self.domain
        cover = self.cache.sample(cfg.batch, cfg.frame, generator)
        shape = (cfg.batch, domain.classes, self.kwargs["message_bits"])
        parts = torch.randint(0, 2, shape, generator=generator).to(self.device).float() * 2 - 1
        with torch.set_grad_enabled(not self.decoder_only):
            marked = in_domain.mark(self.model, domain, cover, parts, self.strength, self.marked_rows)
        quantized, attacked = self._attacked(marked, cover, attack)
        tiles, targets = in_domain.tile_sample(self.model, domain, attacked, parts, self.marked_rows, generator)
        return (cover, marked, quantized, *self._decoded(tiles, heavy, targets))

    def _attacked(self, marked: torch.Tensor, cover: torch.Tensor, attack) -> tuple[torch.Tensor, torch.Tensor]:
        """(the marked images clamped and rounded to 8 bits with a straight-through gradient, those attacked)."""
        clamped = marked.clamp(0, 1)
        quantized = clamped + (torch.round(clamped * 255) / 255 - clamped).detach()
        if attack is None:
            return quantized, quantized
        params = attack.sample(quantized.shape, generator=self.generator)
        return quantized, self.codecs(attack, quantized.float(), params, cover)

    def _decoded(self, attacked: torch.Tensor, heavy: bool, targets: torch.Tensor) -> tuple:
        logits, extra_loss = self.model.decode_for_training(attacked, heavy, targets)
        return logits, targets, extra_loss

    def _event(self, note: str, row: dict) -> None:
        """Record a stage or curriculum change: in the card's history, on stderr and in log.csv."""
        self.events.append(note)
        self._write({**row, "stage": self.number, "event": note})

    def _write(self, row: dict) -> None:
        self.log.write(row)
        print(" ".join(f"{key}={value}" for key, value in row.items()), file=sys.stderr)

    def _show(self, row: dict) -> None:
        status = f"loss {row['loss']:.3f} acc {row['bit_acc']:.2f}"
        if self.last_val:
            accuracies = [v for k, v in self.last_val.items() if k.startswith("bit_acc")]
            status += f" | val {self.last_val['psnr']:.1f} dB acc {sum(accuracies) / len(accuracies):.2f}"
        self.bar.show(f"stage {self.number} {self.curriculum.stage}", row["step"], self.cfg.steps, status)

    def _validate(self) -> dict:
        begun = time.monotonic()
        metrics = validate(self.model, self.val_images, **self._validation(self.strength))
        self.last_val = {k: round(v, 4) for k, v in metrics.items()}
        self.val_seconds = time.monotonic() - begun
        self._train_mode()
        return {f"val_{key}": value for key, value in self.last_val.items()}

    def _validation(self, strength: float) -> dict:
        """Keyword arguments of :func:`validate` for this run: through its domain (and edits of small photos) if
        it has one."""
        if self.domain is None:
            return {"strength": strength}
        return {"strength": strength, "domain": self.domain, "attack_specs": DOMAIN_VALIDATION_ATTACKS}

    def _train_mode(self) -> None:
        self.model.train().requires_grad_(True)
        if self.domain is not None:
            # Through a domain the encoder sees one grey tile per message (its patterns) and the decoder a few tiles
            # of each frame: batch statistics of those are not what the pair normalises by, so batch norms keep
            # their running statistics (a fine-tune from mbrs-64-tiled in train mode fell from 1.0 to 0.67 of its
            # bits and to 21 dB in 50 steps).
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        if self.decoder_only:
            self.model.freeze_encoder()

    def _save_state(self) -> None:
        from wmark.io.atomic import atomic_output

        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "curriculum": json.dumps(self.curriculum.state_dict()),
            "rng": self.generator.get_state(),
            "stage": self.number,
            "step": self.step_in_stage,
            "total_steps": self.total_steps,
            "events": self.events,
            **({} if self.adversary is None else {"adversary": self.adversary.state_dict()}),
        }
        with atomic_output(self.out / STATE) as tmp:
            torch.save(state, tmp)

    def _export(self, stopped: str | None) -> zoo.Card:
        """Calibrate the default strength on validation images and write the checkpoint."""
        cfg, kwargs, model, device = self.cfg, self.kwargs, self.model, self.device
        model.eval()
        domain = self.domain or pipeline.WHOLE_FRAME
        strength, metrics = self.strength, {}
        if self.val_images:
            if self.recipe.calibrate_strength and cfg.target_flip is not None:
                strength = round(calibrate_flip_strength(model, self.val_images, cfg.target_flip, domain).strength, 4)
            elif self.recipe.calibrate_strength:
                strength = round(calibrate_strength(model, self.val_images, cfg.target_psnr, domain), 4)
            validation = self._validation(strength)
            validation.setdefault("attack_specs", VALIDATION_ATTACKS)
            metrics = {k: round(v, 4) for k, v in validate(model, self.val_images, **validation).items()}
        code = PayloadCode(domain.codeword_bits(kwargs["message_bits"]))
        previous = {}
        if (self.out / zoo.CARD).is_file():
            previous = zoo.read_card(self.out).data.get("training", {})
        seconds = time.monotonic() - self.started
        stages = [
            {"stage": number, "name": stage.name, "decoder_only": cfg.decoder_only or stage.decoder_only,
             "attacks": list(self.specs(stage))}
            for number, stage in self.stages
        ]
        card = {
            "name": self.out.name,
            "family": cfg.family,
            "kwargs": kwargs,
            "bits": domain.codeword_bits(kwargs["message_bits"]),
            "data_bits": code.data_bits,
            "capacity_bytes": code.capacity_bytes,
            "payload": code.describe(),
            "size": kwargs["size"],
            "strength": strength,
            "strength_rule": self._strength_rule(),
            **({} if self.domain is None else {"domain": self.domain.to_dict()}),
            "training": {
                "data": cfg.data,
                "val": cfg.val,
                "steps": self.total_steps,
                "batch": cfg.batch,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "seconds": round(previous.get("seconds", 0) + seconds, 1) if cfg.resume else round(seconds, 1),
                "time_budget_s": cfg.time_budget,
                "stopped": stopped,
                "stage": cfg.stage,
                "stages": stages,
                "attacks": list(dict.fromkeys(spec for entry in stages for spec in entry["attacks"])),
                "curriculum": self.events,
                "seed": cfg.seed,
                "init": cfg.init or (previous.get("init") if cfg.resume else None),
                "pipeline_size": cfg.pipeline_size,
                "decoder_only": cfg.decoder_only,
                "image_loss": self.recipe.image_loss,
                "psnr_floor": cfg.psnr_floor,
                "curriculum_stage": self.curriculum.stage if self.curriculum else None,
                "image_weight": float(f"{self.curriculum.full_image_weight():.4g}") if self.curriculum else None,
                "critic_weight": self.recipe.critic_weight,
                **({} if self.domain is None
                   else {"domain": cfg.domain, "frame": cfg.frame, "strength": self.strength}),
                "target_flip": cfg.target_flip,
            },
            "metrics": {"validation": metrics},
        }
        return zoo.save_checkpoint(self.out, model, card)

    def _strength_rule(self) -> str:
        if not self.recipe.calibrate_strength:
            return "the trained strength"
        if self.cfg.target_flip is not None:
            return f"median FLIP {self.cfg.target_flip} x a JPEG 75 re-save's on the validation images (whole pictures)"
        return f"median PSNR {self.cfg.target_psnr} dB on the validation images"
