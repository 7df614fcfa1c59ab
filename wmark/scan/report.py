"""The scan report: append-only JSON lines that a SIGKILL cannot tear, resuming, and a flat CSV.

Each row is one ``os.write`` of one complete line to a file opened with O_APPEND, fsync'd at
least every second and at the end. A killed scan therefore leaves whole lines, or at worst (a
full disk, a power cut) an incomplete last line, which ``--resume`` drops before appending.
The report is written in place, unlike other wmark outputs: that is what makes it resumable.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from wmark.errors import WmarkError
from wmark.io.atomic import atomic_output

CSV_COLUMNS = ("path", "size", "sha256", "type", "detected", "mark_present", "transform", "rotation", "best_model",
               "message", "hex", "p_value", "bit_confidence", "frames", "frames_per_read", "detected_share", "segments",
               "detected_by", "error", "ms")


def path_key(path: str) -> bytes:
    """A 16-byte digest of a path: what ``--resume`` remembers of each file already done."""
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=16).digest()


class JsonlWriter:
    """Append rows to ``path``, one single write a row."""

    def __init__(self, path: Path, truncate: bool, fsync_every: float = 1.0) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        try:
            self.fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise WmarkError(f"cannot write the report {path}: {exc.strerror}") from None
        self.fsync_every = fsync_every
        self.synced = time.monotonic()

    def write(self, row: dict) -> None:
        data = (json.dumps(row) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]
        if time.monotonic() - self.synced >= self.fsync_every:
            os.fsync(self.fd)
            self.synced = time.monotonic()

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def trim_torn_line(path: Path) -> bool:
    """Cut an incomplete last line off ``path``; True when there was one."""
    with open(path, "rb+") as handle:
        end = handle.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            step = min(position, 1 << 16)
            handle.seek(position - step)
            newline = handle.read(step).rfind(b"\n")
            if newline >= 0:
                position = position - step + newline + 1
                break
            position -= step
        if position == end:
            return False
        handle.truncate(position)
        return True


def read_rows(path: Path) -> Iterator[dict]:
    """The rows of a report whose lines are all complete (see :func:`trim_torn_line`)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or "path" not in row:
                raise WmarkError(f"{path}, line {number}: not a wmark scan report row; refusing to append to it")
            yield row


def csv_record(row: dict) -> list:
    """A report row as one flat CSV record (the best result; ``detected_by`` lists the models)."""
    flat = {k: row.get(k) for k in CSV_COLUMNS}
    flat["segments"] = ";".join(f"{a}-{b}" for a, b in row.get("segments") or [])
    flat["detected_by"] = ";".join(r["model"] for r in row["results"] if r["detected"])
    flat["ms"] = (row.get("ms") or {}).get("total")
    return ["" if flat[k] is None else flat[k] for k in CSV_COLUMNS]


@dataclass
class Report:
    """Where rows go: ``write(row)``; ``done`` holds the path keys already reported (``--resume``)."""

    sinks: list = field(default_factory=list)
    done: set[bytes] = field(default_factory=set)
    outputs: list[str] = field(default_factory=list)
    dropped_torn_line: bool = False

    def write(self, row: dict) -> None:
        for sink in self.sinks:
            sink(row)


def _check_output(path: Path, what: str) -> None:
    if path.is_dir():
        raise WmarkError(f"{what} {path} is a folder")
    if not path.parent.is_dir():
        raise WmarkError(f"cannot write {what} {path}: {path.parent} is not a folder")


@contextmanager
def open_report(out: str | None, csv_path: str | None, resume: bool, force: bool, stream: TextIO
                ) -> Iterator[Report]:
    """The report sinks: JSONL to ``out`` (or ``stream`` without it) and, at the end, a CSV.

    Without ``resume`` an existing ``out`` is refused unless ``force`` (start over). With it, a
    torn last line is dropped, the paths done are remembered, and new rows are appended. The
    CSV holds every row of the report, the resumed ones included; it appears when the scan ends.
    """
    report = Report()
    target = None if out is None else Path(out)
    if resume and target is None:
        raise WmarkError("--resume needs --report FILE, the report to continue")
    if resume and force:
        raise WmarkError("give --resume (continue the report) or --force (start it over), not both")
    if target is not None:
        _check_output(target, "the report")
        if target.exists() and not (resume or force):
            raise WmarkError(f"{target} exists: give --resume to continue that scan, or --force to start over")
    with ExitStack() as stack:
        if csv_path is not None:
            _check_output(Path(csv_path), "the CSV")
            tmp = stack.enter_context(atomic_output(csv_path))
            handle = stack.enter_context(open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape"))
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            report.sinks.append(lambda row: writer.writerow(csv_record(row)))
            report.outputs += [os.path.abspath(csv_path), os.path.abspath(tmp)]
        if target is not None:
            if resume and target.exists():
                report.dropped_torn_line = trim_torn_line(target)
                for row in read_rows(target):
                    report.done.add(path_key(row["path"]))
                    report.write(row)
            jsonl = JsonlWriter(target, truncate=force)
            stack.callback(jsonl.close)
            report.sinks.insert(0, jsonl.write)
            report.outputs.append(os.path.abspath(target))
        else:
            report.sinks.insert(0, functools.partial(_print_row, stream))
        yield report


def _print_row(stream: TextIO, row: dict) -> None:
    stream.write(json.dumps(row) + "\n")
    stream.flush()
