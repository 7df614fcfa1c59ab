"""The ``wmark`` command line: thin over the library; prints a table or one JSON object."""
from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import typer

from wmark.interface.defaults import DEFAULT_FPR, FRAME_BATCH, VIDEO_CODEC, VIDEO_CRF, VIDEO_PRESET
from wmark.sync import DEFAULT_SEARCH

# Plain help (no rich panels): each option shows its metavar, flags show none.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Robust invisible watermarks for images and video.")

JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")
MODEL = typer.Option(None, "-m", "--model", metavar="NAME", help="Checkpoint name or folder (default: the zoo's default).")
KEY = typer.Option(None, "--key", metavar="KEY", help="Secret key that scrambles the codeword; needed again to read it.")
DEVICE = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu or cuda.")
SEARCH_HELP = ("off; fast to also try the image flipped and turned by quarter turns (8 poses); tilt to scan the "
               "image and its mirror image for a rotation within 10 degrees; full to scan all 8 so; sync to find a "
               "crop, rescale, squeeze or turn of the image or its mirror image from the model's template (tilt for "
               "a model without one). The image as received is read first, at half of --fpr; a video's pose is found "
               "on a few frames; the p-value counts every pose the level could end on.")
SEARCH = typer.Option(DEFAULT_SEARCH, "--search", metavar="LEVEL", help=SEARCH_HELP)
FPR = typer.Option(DEFAULT_FPR, "--fpr", metavar="RATE", help="False-positive rate for 'detected'.")
BATCH = typer.Option(FRAME_BATCH, "--batch", metavar="N", help="Video frames per model call.")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"wmark {version('wmark')}")
        raise typer.Exit()


@app.callback()
def _root(_: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit.")) -> None:
    """Robust invisible watermarks for images and video."""
    os.environ.setdefault("OMP_NUM_THREADS", COMPUTE_THREADS)  # read by torch when it is first imported


COMPUTE_THREADS = "1"
"""Torch's threads in a command, unless OMP_NUM_THREADS says otherwise. One thread read an unmarked 1 MP photo
4.8 times faster than torch's default on this project's shared 2-core machine (whole-process median wall time,
5 runs each in turn): threads that wait for a busy core spin. A command's parallel unit is the file
(``scan --workers``)."""


def _user_errors():
    from attacks import AttackError
    from wmark.errors import WmarkError

    return (WmarkError, AttackError)


def _fail(message: str, as_json: bool) -> None:
    """Say a user-caused error in one line on stderr, and under --json also as ``{"error": ...}`` on stdout."""
    typer.echo(f"error: {message}", err=True)
    if as_json:
        typer.echo(json.dumps({"error": message}))


@contextmanager
def _reported(as_json: bool = False):
    """Turn a user-caused error into one line (:func:`_fail`) and exit code 2."""
    try:
        yield
    except _user_errors() as exc:
        _fail(str(exc), as_json)
        raise typer.Exit(2) from None


@contextmanager
def _unverified():
    """Catch an output that does not read back: say so in one line on stderr and yield its report (kept, so the
    caller prints it and exits 1) in the list."""
    from wmark.api import NotVerified

    kept = []
    try:
        yield kept
    except NotVerified as exc:
        typer.echo(f"error: {exc}", err=True)
        kept.append(exc.report)


def _print(payload: dict, as_json: bool, table: list[tuple[str, object]] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(payload))
        return
    for label, value in table if table is not None else payload.items():
        typer.echo(f"{label:<24} {value}")


def _expand(paths: List[Path]) -> list[tuple[Path, Path]]:
    from wmark.io.media import expand_media

    return expand_media(paths)


def _batch(items: list, work, label: str) -> tuple[list[dict], list[dict]]:
    """Run ``work(item) -> dict`` on each item with a progress bar; report bad items and go on."""
    results, errors = [], []
    from wmark.progress import stderr_progress

    with stderr_progress(hidden=len(items) < 2) as progress:
        task = progress.add_task(label, total=len(items))
        for item in items:
            try:
                results.append(work(item))
            except _user_errors() as exc:
                errors.append({"path": str(item[0] if isinstance(item, tuple) else item), "error": str(exc)})
                typer.echo(f"error: {exc}", err=True)
            progress.advance(task)
    return results, errors


def _undecoded(found: dict) -> str:
    return "mark present, not decoded (wrong or missing --key?)" if found["mark_present"] else "not detected"


def _quality(report: dict) -> str:
    return f"{'PSNR-Y' if 'frames' in report else 'PSNR'} {report['psnr']:.2f} dB"


class _Markers:
    """The model for each input: the one asked for, or else the default of the input's medium (zoo.json names
    one for images and one for videos), each loaded once."""

    def __init__(self, model: Optional[str], device: str) -> None:
        self.model, self.device, self.loaded = model, device, {}

    def __call__(self, path: Path):
        import wmark
        from wmark.io.media import media_kind

        medium = "video" if self.model is None and media_kind(path) == "video" else "image"
        if medium not in self.loaded:
            self.loaded[medium] = wmark.load(self.model, device=self.device, medium=medium)
        return self.loaded[medium]


@contextmanager
def _frame_progress(path: Path):
    """A frame progress bar on stderr for a video input: yields the callback, or None for images."""
    from wmark.io.media import media_kind
    from wmark.io.video import probe
    from wmark.progress import stderr_progress

    if not path.is_file() or media_kind(path) != "video":
        yield None
        return
    with stderr_progress() as progress:
        task = progress.add_task("frames", total=probe(path).frames)
        yield lambda done: progress.advance(task, done)


@app.command()
def embed(
    paths: List[Path] = typer.Argument(..., metavar="PATH", help="INPUT OUTPUT, or INPUT... OUTPUT_DIR (inputs may be folders)."),
    model: Optional[str] = MODEL,
    message: Optional[str] = typer.Option(None, "--message", metavar="TEXT", help="Text to hide (UTF-8, coded with Reed-Solomon)."),
    codeword: Optional[str] = typer.Option(
        None, "--codeword", metavar="BITS", help="Raw codeword of exactly the model's bit count (0s and 1s): no ECC, no key."),
    hex_: Optional[str] = typer.Option(None, "--hex", metavar="HEX", help="Payload bytes in hex."),
    key: Optional[str] = KEY,
    strength: Optional[float] = typer.Option(None, "--strength", metavar="S", help="Residual strength (default: the card's)."),
    psnr: Optional[float] = typer.Option(
        None, "--psnr", metavar="DB", help="Images: set each image's strength for this PSNR in dB (e.g. 45), instead of --strength."),
    flip: bool = typer.Option(
        False, "--flip", help="Images: also report FLIP visibility, alone and as a ratio to a JPEG 75 re-save (slow)."),
    quality: Optional[int] = typer.Option(None, "--quality", metavar="Q", help="Quality for lossy outputs (JPEG, WebP); 0-100.  [default: 95]"),
    force: bool = typer.Option(
        False, "--force", help="Overwrite the input file, mark an input that already carries this model's mark "
        "(the two marks then garble each other), or go under the 25 dB PSNR floor; each is refused otherwise."),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip decoding the written output (faster). By default an output that does not "
        "read back is kept, reported, and exits 1."),
    codec: str = typer.Option(VIDEO_CODEC, "--codec", metavar="CODEC", help="Video codec: h264, h265, vp9 or av1."),
    crf: int = typer.Option(VIDEO_CRF, "--crf", metavar="CRF", help="Video quality (lower is better)."),
    preset: str = typer.Option(VIDEO_PRESET, "--preset", metavar="PRESET", help="x264/x265 speed preset."),
    batch: int = BATCH,
    every: int = typer.Option(1, "--every", metavar="K", help="Video: embed every K-th frame and reuse its residual between."),
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Hide a message in images and videos."""
    import wmark
    from wmark.io.video import check_options

    with _reported(as_json):
        if len(paths) < 2:
            raise wmark.WmarkError("give an INPUT and an OUTPUT (or several inputs and an output folder)")
        *inputs, output = paths
        if message is None and codeword is None and hex_ is None:
            raise wmark.WmarkError("give a payload: --message TEXT, --codeword 0101... or --hex HEX")
        video = dict(codec=codec, crf=crf, preset=preset, batch=batch, every=every)
        check_options(**video)
        marker_for = _Markers(model, device)
        options = dict(message=message, codeword=codeword, hex=hex_, key=key, strength=strength, quality=quality, force=force,
                       psnr_target=psnr, flip=flip, verify=not no_verify)
        if len(inputs) == 1 and not inputs[0].is_dir():
            if output.is_dir():
                output = output / inputs[0].name
            with _frame_progress(inputs[0]) as progress, _unverified() as kept:
                report = marker_for(inputs[0]).embed_file(inputs[0], output, **options, **video, progress=progress)
            written = (kept or [report])[0].to_dict()
            _print(written, as_json)
            if kept:
                raise typer.Exit(1)
            if written.get("warning"):
                typer.echo(f"warning: {written['warning']}", err=True)
            return
        if output.exists() and not output.is_dir():
            raise wmark.WmarkError(f"with several inputs or a folder, OUTPUT must be a folder; {output} is a file")
        pairs = _expand(inputs)
        clashes = sorted(str(name) for name, count in Counter(name for _, name in pairs).items() if count > 1)
        if clashes:
            raise wmark.WmarkError(f"several inputs would be written to the same output name: {', '.join(clashes)}")

        def one(pair: tuple[Path, Path]) -> dict:
            target = output / pair[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            with _unverified() as kept:
                return marker_for(pair[0]).embed_file(pair[0], target, **options, **video).to_dict()
            return kept[0].to_dict()

        results, errors = _batch(pairs, one, "embedding")
        _print({"results": results, "errors": errors}, as_json,
               [(r["path"], _quality(r) + ("" if r["verified"] is not False else ", NOT VERIFIED")) for r in results])
        if errors:
            raise typer.Exit(2)
        if any(r["verified"] is False for r in results):
            raise typer.Exit(1)


@app.command()
def extract(
    paths: List[Path] = typer.Argument(..., metavar="PATH", help="Images, videos or folders."),
    model: Optional[str] = MODEL,
    key: Optional[str] = KEY,
    fpr: float = FPR,
    search: str = SEARCH,
    frames: Optional[int] = typer.Option(None, "--frames", metavar="N", help="Video: read N frames spread evenly (default all)."),
    per_frame: bool = typer.Option(False, "--per-frame", help="Video: read every frame alone and report each "
                                   "(slower; by default runs of 8 frames are averaged into one read)."),
    batch: int = BATCH,
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Read the hidden message back (blind). For a video: one message from all frames, and a timeline."""
    import wmark
    from wmark.io.media import media_kind
    from wmark.io.video import check_options

    with _reported(as_json):
        check_options(batch=batch, frames=frames)
        marker_for = _Markers(model, device)

        def one(path: Path) -> dict:
            marker = marker_for(path)
            if media_kind(path) == "video":
                found = marker.extract_video(path, key=key, fpr=fpr, frames=frames, batch=batch, per_frame=per_frame,
                                             search=search)
            else:
                found = marker.extract(path, key=key, fpr=fpr, search=search)
            return {"path": str(path), "model": marker.name, **found.to_dict()}

        if len(paths) == 1 and not paths[0].is_dir():
            found = one(paths[0])
            _print(found, as_json)
            if found["mark_present"] and not found["detected"]:
                typer.echo("note: a mark of this model is present but did not decode: a wrong or missing --key?",
                           err=True)
            return
        results, errors = _batch([path for path, _ in _expand(paths)], one, "extracting")
        _print({"results": results, "errors": errors}, as_json,
               [(r["path"], r["message"] if r["detected"] else _undecoded(r)) for r in results])
        if errors:
            raise typer.Exit(2)


@app.command()
def detect(
    paths: List[Path] = typer.Argument(..., metavar="PATH", help="Images, videos or folders to check."),
    model: Optional[str] = MODEL,
    key: Optional[str] = KEY,
    expect: Optional[str] = typer.Option(None, "--expect", metavar="TEXT", help="The message you expect (binomial test on all bits)."),
    fpr: float = FPR,
    search: str = SEARCH,
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Decide whether a watermark is present. Exit 0 if every input is detected, 1 if one is not, 2 on error."""
    with _reported(as_json):
        marker_for = _Markers(model, device)

        def one(path: Path) -> dict:
            marker = marker_for(path)
            return {"path": str(path), "model": marker.name,
                    **marker.detect(path, key=key, expect=expect, fpr=fpr, search=search).to_dict()}

        if len(paths) == 1 and not paths[0].is_dir():
            result = one(paths[0])
            _print(result, as_json)
            raise typer.Exit(0 if result["detected"] else 1)
        results, errors = _batch([path for path, _ in _expand(paths)], one, "detecting")
    _print({"results": results, "errors": errors}, as_json,
           [(r["path"], "detected" if r["detected"] else "not detected") for r in results])
    if errors:
        raise typer.Exit(2)
    raise typer.Exit(0 if all(r["detected"] for r in results) else 1)


@app.command()
def models(as_json: bool = JSON) -> None:
    """List the trained checkpoints: * marks the default for images, v the default for videos."""
    from wmark import zoo

    with _reported(as_json):
        default, video_default = zoo.default_name(), zoo.default_name(medium="video")
        cards = [card.summary() for card in zoo.list_cards()]
    if as_json:
        typer.echo(json.dumps({"default": default, "video_default": video_default, "models": cards}))
        return
    typer.echo(f"   {'name':<20} {'family':<10} {'payload':<26} {'size':>6} strength")
    for card in cards:
        mark = ("*" if card["name"] == default else " ") + ("v" if card["name"] == video_default else " ")
        text = _count(card["capacity_bytes"], "byte") + " of text"
        typer.echo(f"{mark} {card['name']:<20} {card['family']:<10} {card['bits']:>3} bits, {text:<16} "
                   f"{card['native_size']:>3} px {card['strength']:>8}")
    typer.echo("* default for images, v default for videos; -m NAME picks another.")


def _count(n, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


GRAD_LEGEND = ("gradient (for training): exact = differentiable; approx = a differentiable stand-in; "
               "ste = real codec, straight-through estimator; none = not trainable through")


@app.command(name="attacks")
def list_attacks(as_json: bool = JSON) -> None:
    """List the attacks, their parameters and how training differentiates through them."""
    from attacks.catalogue import available

    described = available()
    if as_json:
        typer.echo(json.dumps({"attacks": described}))
        return
    typer.echo(f"{'name':<14} {'gradient':<9} parameters")
    for entry in described:
        typer.echo(f"{entry['name']:<14} {entry['grad']:<9} {', '.join(entry['params']) or '-'}")
    typer.echo(GRAD_LEGEND)
    typer.echo("Spec syntax: name:key=value,key=lo-hi; chain with +, pick one with |, e.g. jpeg:quality=50+resize:scale=0.5")


@app.command()
def demo(
    out: Path = typer.Option(Path("wmark-demo"), "--out", metavar="PATH", help="Folder for the demo's pictures."),
    model: Optional[str] = MODEL,
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Embed into a bundled photo, apply JPEG 75, extract; show the amplified difference, a 1:1 crop of the flattest
    region (original | marked | difference) and FLIP visibility beside PSNR."""
    from wmark.demo import run_demo

    with _reported(as_json):
        report = run_demo(out, model=model, device=device)
    _print(report, as_json, [(k, v) for k, v in report.items() if not isinstance(v, (dict, list))]
           + [(f"wrote {name}", path) for name, path in report["files"].items()]
           + [(f"read {Path(r['path']).name}", r["message"] if r["detected"] else "not detected")
              for r in report["results"]])
    if not as_json:
        typer.echo("flip_ratio under 1: the mark is less visible than re-saving the photo as JPEG 75. "
                   "Compare the original and the marked photo at 1:1 in flat_crop.png.")


def _model_args(pairs: List[str]) -> dict:
    """KEY=VALUE pairs; values are read as JSON (numbers, true/false) and otherwise kept as text."""
    from wmark.errors import WmarkError

    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise WmarkError(f"--model-arg takes KEY=VALUE, got {pair!r}")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


@app.command()
def train(
    family: str = typer.Argument(..., metavar="FAMILY", help="Model family, e.g. hidden."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="Folder of training images."),
    out: Path = typer.Option(..., "--out", metavar="PATH", help="Checkpoint folder to write (checkpoints/NAME)."),
    val: Optional[Path] = typer.Option(None, "--val", metavar="FOLDER", help="Folder of validation images."),
    bits: Optional[int] = typer.Option(None, "--bits", metavar="BITS", help="Message bits (default: the family's)."),
    size: Optional[int] = typer.Option(None, "--size", metavar="PX", help="Native size in pixels (default: the family's)."),
    steps: int = typer.Option(10000, "--steps", metavar="N", help="Training steps (all stages together)."),
    batch: int = typer.Option(16, "--batch", metavar="N", help="Images per step."),
    lr: Optional[float] = typer.Option(None, "--lr", metavar="LR", help="Learning rate (default: the family's recipe)."),
    attack: Optional[List[str]] = typer.Option(None, "--attack", metavar="SPEC", help="Attack spec for the curriculum (repeatable)."),
    device: str = DEVICE,
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/train_state.pt."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seeds the data order, the messages and the attacks."),
    init: Optional[str] = typer.Option(None, "--init", metavar="NAME", help="Start from this checkpoint's weights."),
    val_every: int = typer.Option(500, "--val-every", metavar="N", help="Validate every N steps."),
    target_psnr: float = typer.Option(40.0, "--target-psnr", metavar="DB", help="Default strength is set for this median PSNR."),
    psnr_floor: Optional[float] = typer.Option(
        None, "--psnr-floor", metavar="DB", help="Charge each training image whose PSNR falls under DB."),
    pipeline_size: Optional[int] = typer.Option(
        None, "--pipeline-size", metavar="PX", help="Train through the any-resolution pipeline on crops of this size."),
    decoder_only: bool = typer.Option(False, "--decoder-only", help="Freeze the encoder (start from --init)."),
    stage: Optional[int] = typer.Option(None, "--stage", metavar="N", help="Run only this stage of the recipe (default: all)."),
    time_budget: Optional[str] = typer.Option(
        None, "--time", metavar="DURATION", help="Wall-clock budget (45m, 90s, 2h, 1h30m): stop in time to save the state and export."),
    cache: Optional[Path] = typer.Option(
        None, "--cache", metavar="FOLDER", help="Keep the decoded training images in this folder (uint8 .npy) for later runs."),
    codec_workers: int = typer.Option(0, "--codec-workers", metavar="N", help="Threads for real codecs (jpeg, h264) in the loop."),
    model_arg: Optional[List[str]] = typer.Option(
        None, "--model-arg", metavar="KEY=VALUE", help="Constructor argument KEY=VALUE of the family (repeatable), e.g. subband=HH."),
    domain: Optional[str] = typer.Option(
        None, "--domain", metavar="NAME|SETTINGS",
        help="Train through an embedding domain: a checkpoint's (e.g. mbrs-64-tiled) or settings such as "
             "tiles=16:0.6+3,classes=3,luma,jnd,patterns,template=0.35 (bands TILES[:WEIGHT][@UP_TO])."),
    frame: int = typer.Option(256, "--frame", metavar="PX", help="With --domain: side of the training frames."),
    target_flip: Optional[float] = typer.Option(
        None, "--target-flip", metavar="RATIO",
        help="Image loss FLIP, steered to RATIO x a JPEG 75 re-save's FLIP (instead of --target-psnr)."),
) -> None:
    """Train a model family and write its checkpoint folder."""
    from wmark.train.budget import parse_duration
    from wmark.train.loop import TrainConfig, train as run_training

    with _reported():
        card = run_training(TrainConfig(
            family=family, data=str(data), out=str(out), val=str(val) if val else None, bits=bits, size=size,
            steps=steps, batch=batch, lr=lr, attacks=attack or None, device=device, resume=resume, seed=seed,
            init=init, val_every=val_every, target_psnr=target_psnr, psnr_floor=psnr_floor,
            pipeline_size=pipeline_size,
            decoder_only=decoder_only, stage=stage,
            time_budget=parse_duration(time_budget) if time_budget is not None else None,
            cache=str(cache) if cache else None, codec_workers=codec_workers,
            model_kwargs=_model_args(model_arg or []), domain=domain, frame=frame, target_flip=target_flip,
        ))
    typer.echo(json.dumps(card.summary()))


@app.command()
def bench(
    inputs: List[Path] = typer.Argument(..., metavar="PATH", help="Images, videos or folders of them."),
    model: Optional[List[str]] = typer.Option(
        None, "-m", "--model", metavar="NAME", help="Checkpoint name or folder, or imwatermark:dwtDct|dwtDctSvd|rivaGan (repeatable)."),
    attack: Optional[List[str]] = typer.Option(
        None, "-a", "--attack", metavar="SPEC", help="Attack spec (repeatable; default: the fixed grid in docs/bench.md)."),
    strength: Optional[List[float]] = typer.Option(None, "--strength", metavar="S", help="Strength to sweep (repeatable; default: the card's)."),
    frames: Optional[int] = typer.Option(None, "--frames", metavar="N", help="Video: N frames spread evenly (default all)."),
    batch: int = typer.Option(FRAME_BATCH, "--batch", metavar="N", help="Video frames per model call (and per attacked clip)."),
    out: Path = typer.Option(Path("wmark-bench"), "--out", metavar="PATH", help="Folder for frames.csv, summary.json and the plots."),
    fail_under: Optional[List[str]] = typer.Option(
        None, "--fail-under", metavar="SPEC=ACC", help="SPEC=ACC: exit 1 when a model's mean bit accuracy under SPEC is below ACC (repeatable)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seeds the codewords and the attack params."),
    flip: bool = typer.Option(
        False, "--flip", help="Also measure FLIP visibility of each marked frame (centre 512 px crop at 1:1; ~1 s a frame)."),
    search: str = typer.Option(
        "off", "--search", metavar="LEVEL",
        help="Read each attacked image as 'wmark extract --search LEVEL' does: off (default: as received, the raw "
             "robustness), fast, tilt, full or sync (see 'wmark extract --help'). Images only; peers are read as received."),
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    """Benchmark models against an attack grid: bit accuracy against PSNR, per frame. Exit 1 if a --fail-under fails."""
    from wmark.bench import engine, report

    with _reported(as_json):
        thresholds = report.parse_thresholds(fail_under or [], attack or None)
        result = engine.run(inputs, engine.load_models(model or None, device), attack or None, strength or None,
                            frames=frames, seed=seed, batch=batch, device=device, flip=flip, search=search)
        summary = engine.summarize(result)
        outcomes = report.check_thresholds(summary, thresholds)
        if thresholds:
            summary["thresholds"] = outcomes
        report.write_outputs(result, summary, out)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*report.TABLE_HEADER, title=f"wmark bench: {summary['speed']['frames']} frames, search {search}, {out}")
        for row in report.table_rows(summary):
            table.add_row(*row)
        console = Console()
        (console if console.is_terminal else Console(width=160)).print(table)  # whole lines in logs
        for outcome in outcomes:
            typer.echo(f"{'ok  ' if outcome['passed'] else 'FAIL'} {outcome['threshold']}")
            for failure in outcome["failures"]:
                typer.echo(f"     {failure}")
    for error in summary["errors"]:
        where = ", ".join(str(v) for k, v in error.items() if k != "error")
        typer.echo(f"warning: {where}: {error['error']}", err=True)
    if not all(o["passed"] for o in outcomes):
        raise typer.Exit(1)


@app.command()
def scan(
    paths: List[str] = typer.Argument(..., metavar="PATH", help="Files and folders (walked recursively); - reads paths from stdin."),
    model: Optional[List[str]] = typer.Option(
        None, "-m", "--model", metavar="NAME", help="Checkpoint name or folder (repeatable: every file meets every model)."),
    key: Optional[str] = KEY,
    fpr: float = FPR,
    report: Optional[str] = typer.Option(None, "--report", metavar="FILE", help="JSONL report, one row a file (default: stdout)."),
    csv: Optional[str] = typer.Option(None, "--csv", metavar="PATH", help="Also write a flat CSV of the report when the scan ends."),
    workers: int = typer.Option(1, "--workers", metavar="N", help="Worker processes (0: scan in this process)."),
    resume: bool = typer.Option(False, "--resume", help="Continue --report: skip the files in it, append the rest."),
    force: bool = typer.Option(False, "--force", help="Start --report over when it exists."),
    timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS", help="Seconds a file may take (then an error row)."),
    engine: str = typer.Option("local", "--engine", metavar="ENGINE", help="local (worker processes) or dask."),
    address: Optional[str] = typer.Option(None, "--address", metavar="URL", help="Dask scheduler, e.g. tcp://host:8786 (default: a LocalCluster)."),
    search: str = SEARCH,
    device: str = DEVICE,
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary as one JSON object: on stdout with --report, else on stderr after the rows."),
) -> None:
    """Forensic scan of files and folders: one JSON line a file, every model tried. Exit 0 when it completes."""
    from wmark import zoo
    from wmark.scan.collection import run
    from wmark.scan.job import ScanConfig

    with _reported(as_json):
        try:
            defaults = tuple(dict.fromkeys(zoo.default_name(medium=medium) for medium in zoo.MEDIA))
            summary = run(paths, ScanConfig(tuple(model or defaults), key, fpr, device, timeout, search=search), out=report, csv=csv,
                          resume=resume, force=force, workers=workers, engine=engine, address=address, progress=True)
        except KeyboardInterrupt:
            typer.echo("interrupted; the report holds whole lines: --resume continues it", err=True)
            raise typer.Exit(130) from None
    if as_json:  # rows stream to stdout without --out, so the summary goes to stderr then
        typer.echo(json.dumps(summary.to_dict()), err=report is None)
    else:
        typer.echo(f"scanned {summary.scanned} files in {summary.seconds:.1f} s ({summary.files_per_s:.2f} files/s): "
                   f"{summary.detected} detected, {summary.present} with a mark that did not decode, "
                   f"{summary.clean} clean, {summary.errors} errors; "
                   f"{summary.skipped} already in the report", err=True)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)  # unwind like Ctrl-C, so no partial output is left
    if "--json" not in sys.argv[1:]:
        app(prog_name="wmark")
        return
    from typer.exceptions import TyperException  # the base of typer's usage errors

    try:  # under --json a usage error (unknown option, bad value) is JSON on stdout too
        code = app(prog_name="wmark", standalone_mode=False)
    except TyperException as exc:
        _fail(exc.format_message(), as_json=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
