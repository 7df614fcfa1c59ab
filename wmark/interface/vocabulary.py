"""The field names of wmark's JSON reports: one name for one quantity, with one JSON type, in every command that
prints it (embed, extract, detect, demo, bench, scan, models).

``FIELDS`` maps each name to its type and meaning. ``tests/test_vocabulary.py`` runs every command with ``--json``
and checks each field it prints against this table, and ``docs/cli.md``'s field table is generated from it
(``benchmarks/readme_tables.py``). A new field is added here first.
"""
from __future__ import annotations

NUMBER, TEXT, FLAG, LIST, OBJECT = "number", "text", "true/false", "list", "object"

FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    # what a row is about
    "path": ((TEXT,), "the file the row is about: the file written (embed), read (extract, detect, scan) or that "
                      "failed (an error)"),
    "input": ((TEXT,), "the file that was marked (embed) or benchmarked (bench)"),
    "model": ((TEXT,), "the checkpoint name"),
    "error": ((TEXT,), "why the command or this item failed: the one line also printed on stderr"),
    "errors": ((LIST,), "the items that failed, each with `path` (or what it was) and `error`"),
    "results": ((LIST,), "one report per item, for several inputs"),
    "out": ((TEXT,), "the folder the command wrote its files into"),
    "files": ((OBJECT,), "the files written, by role"),
    "frames": ((NUMBER,), "video frames marked, read or benchmarked"),
    "frame": ((NUMBER,), "a frame's index in its video (0 for an image)"),
    "type": ((TEXT,), "the kind of file: image, video or other"),
    "size": ((NUMBER,), "a file's size in bytes"),
    "native_size": ((NUMBER,), "the side in pixels of the square a model reads and writes"),
    "sha256": ((TEXT,), "the file's SHA-256, hex"),
    # quality of a mark
    "psnr": ((NUMBER,), "PSNR of the marked picture against the original, dB (a marked video's in embed: the mean "
                        "over frames, on luma)"),
    "psnr_min": ((NUMBER,), "the lowest frame's luma PSNR, dB"),
    "ssim": ((NUMBER,), "SSIM of the marked picture against the original"),
    "flip": ((NUMBER,), "mean FLIP difference of the marked picture (NVIDIA's perceptual metric; 0 is invisible)"),
    "flip_ratio": ((NUMBER,), "`flip` over a JPEG 75 re-save's FLIP of the same picture: under 1 is less visible "
                              "than that re-save"),
    "strength": ((NUMBER,), "the residual's scale"),
    # the payload
    "message": ((TEXT,), "the text embedded (embed, demo) or decoded (null when not detected)"),
    "hex": ((TEXT,), "the payload bytes in hex"),
    "codeword": ((TEXT,), "the raw codeword of 0s and 1s: embedded, or decoded before error correction"),
    "bits": ((NUMBER,), "a model's codeword length in bits"),
    "data_bits": ((NUMBER,), "the payload bits the codeword carries after error correction and the check"),
    "capacity_bytes": ((NUMBER,), "the longest text, in UTF-8 bytes, a model's codeword carries"),
    "bit_accuracy": ((NUMBER,), "share of the codeword's bits read back right"),
    "word_ok": ((NUMBER,), "share of frames whose whole codeword read back right"),
    "verified": ((FLAG,), "the written file read back the payload (null when not checked)"),
    "warning": ((TEXT,), "why the mark may be weaker than usual, or null"),
    # the decision
    "detected": ((FLAG,), "a valid message was read with a p-value at most `fpr`"),
    "mark_present": ((FLAG,), "a mark of this model is probably there, whatever its key (null: not calibrated)"),
    "p_value": ((NUMBER,), "probability that an unmarked picture gives so strong a result, corrected for every "
                           "hypothesis tried"),
    "p_value_median": ((NUMBER,), "median `p_value` of a group of rows"),
    "fpr": ((NUMBER,), "the false-positive rate asked for"),
    "method": ((TEXT,), "how `detect` decided: blind (the error-correcting code) or expect (a binomial test)"),
    "matching_bits": ((NUMBER,), "bits that match the expected codeword"),
    "bit_confidence": ((NUMBER,), "0 for coin-toss decoder outputs, 1 for certain ones"),
    "corrected_symbols": ((NUMBER,), "Reed-Solomon symbols corrected"),
    "hypotheses": ((NUMBER,), "the Bonferroni factor the p-value is already multiplied by"),
    # the pose read under
    "search": ((TEXT,), "the search level: off, fast, tilt, full or sync"),
    "transform": ((TEXT,), "the flip or quarter turn undone before reading"),
    "rotation": ((NUMBER,), "the rotation undone before reading, degrees"),
    "reframe": ((OBJECT,), "where a crop lay in the marked frame: `box` and `frame_size`, or null"),
    "box": ((LIST,), "left, top, right, bottom of the picture, as shares of the marked frame"),
    "frame_size": ((LIST,), "width and height of the marked frame, in received pixels"),
    # video
    "frames_per_read": ((NUMBER,), "consecutive video frames averaged into one read; each takes its run's decision"),
    "detected_share": ((NUMBER,), "share of the frames read whose own decision was positive"),
    "segments": ((LIST,), "inclusive [first, last] ranges of those frames"),
    "per_frame": ((LIST,), "one report a frame, when asked for"),
    "codec": ((TEXT,), "the video codec written"),
    "crf": ((NUMBER,), "the video encoder's constant rate factor"),
    "every": ((NUMBER,), "a fresh residual every this many frames"),
    # bench
    "attack": ((TEXT,), "the attack spec applied before reading"),
    "rows": ((NUMBER,), "rows a mean is taken over"),
    "embed_ms": ((NUMBER,), "milliseconds to mark a frame"),
    "extract_ms": ((NUMBER,), "milliseconds to read a frame"),
    "embed_fps": ((NUMBER,), "frames marked per second"),
    "extract_fps": ((NUMBER,), "frames read per second"),
    "speed": ((OBJECT,), "wall time and throughput of the run"),
    "wall_s": ((NUMBER,), "seconds the run took"),
    "rows_per_s": ((NUMBER,), "rows measured per second"),
    "settings": ((OBJECT,), "the options the run was given"),
    "thresholds": ((LIST,), "each `--fail-under` check: `threshold`, `passed` and `failures`"),
    "threshold": ((TEXT,), "a `--fail-under` check as given"),
    "minimum": ((NUMBER,), "the lowest mean bit accuracy a `--fail-under` check accepts"),
    "passed": ((FLAG,), "the check held"),
    "failures": ((LIST,), "why a check failed, one line each"),
    # scan
    "best_model": ((TEXT,), "the model whose result had the lowest p-value"),
    "detected_by": ((LIST,), "the models that detected a mark"),
    "ms": ((OBJECT,), "milliseconds spent on each step: read, decode, detect, total"),
    "read": ((NUMBER,), "milliseconds reading and hashing the file"),
    "decode": ((NUMBER,), "milliseconds decoding the pictures"),
    "detect": ((NUMBER,), "milliseconds reading the marks"),
    "total": ((NUMBER,), "milliseconds in all"),
    "files_scanned": ((NUMBER,), "files scanned"),
    "files_detected": ((NUMBER,), "files in which a message was detected"),
    "files_present": ((NUMBER,), "files with a mark that did not decode (another key?)"),
    "files_clean": ((NUMBER,), "files with no mark found"),
    "files_failed": ((NUMBER,), "files that could not be scanned"),
    "files_skipped": ((NUMBER,), "files already in the report (--resume)"),
    "files_per_s": ((NUMBER,), "files scanned per second"),
    "startup_s": ((NUMBER,), "seconds until the workers were ready"),
    "seconds": ((NUMBER,), "seconds the command took"),
    # models
    "models": ((LIST, OBJECT), "the checkpoints (models), or throughput per model (bench `speed`)"),
    "name": ((TEXT,), "a checkpoint's name"),
    "family": ((TEXT,), "a checkpoint's model family"),
    "default": ((TEXT,), "the default checkpoint for images"),
    "video_default": ((TEXT,), "the default checkpoint for videos"),
    "metrics": ((OBJECT,), "a card's training record, in the training log's own names"),
}
"""Each field's JSON types (a null is allowed for every field) and meaning."""

OPAQUE = ("files", "metrics", "settings")
"""Fields whose object is keyed by data (file roles, attack specs, option names), not by field names."""


def json_type(value) -> str | None:
    """The :data:`FIELDS` type of a JSON value; None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return FLAG
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    return LIST if isinstance(value, list) else OBJECT


def misnamed(report, where: str = "") -> list[str]:
    """Every field of a JSON report (walked through lists and objects, not into :data:`OPAQUE` ones) whose name is
    not in :data:`FIELDS` or whose value has another type; empty when the report speaks the vocabulary."""
    found = []
    if isinstance(report, list):
        for item in report:
            found += misnamed(item, where)
    elif isinstance(report, dict):
        for name, value in report.items():
            at = f"{where}.{name}" if where else name
            if name not in FIELDS:
                found.append(f"{at}: not a field of wmark.interface.vocabulary")
                continue
            kind = json_type(value)
            if kind is not None and kind not in FIELDS[name][0]:
                found.append(f"{at}: a {kind}, not a {' or '.join(FIELDS[name][0])}")
            if name == "models" and kind == OBJECT:  # bench's throughput, keyed by model name
                for model, speeds in value.items():
                    found += misnamed(speeds, f"{at}.{model}")
            elif name not in OPAQUE:
                found += misnamed(value, at)
    return found
