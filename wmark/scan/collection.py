"""Forensic batch scanning: walk collections, try every model on each file, one report row a file.

``run`` is what ``wmark scan`` calls: it checks the options, opens the report
(:mod:`wmark.scan.report`), starts an engine (:mod:`wmark.scan.engines`) and streams the walk through
it. The per-file job is :func:`wmark.scan.job.scan_file`.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TextIO

from wmark.scan.engines import engine as make_engine
from wmark.errors import WmarkError
from wmark.scan.report import open_report, path_key
from wmark.scan.job import ScanConfig, error_row


def walk(roots: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[tuple[str, str | None]]:
    """Yield (absolute path, None) for each file under ``roots``, or (folder, reason) for a folder not walked.

    Streams: one folder listing at a time. Symlinks are followed, but a folder already walked
    (a symlink loop, or a second link to it) is reported instead of walked again. Paths in
    ``exclude`` (the scan's own outputs) are left out.
    """
    skip = {os.path.abspath(p) for p in exclude}
    seen: set[tuple[int, int]] = set()
    for root in roots:
        root = os.path.abspath(root)
        if not os.path.isdir(root):
            yield root, None
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            subfolders: list[str] = []
            try:
                info = os.stat(folder)
                if (info.st_dev, info.st_ino) in seen:
                    yield folder, "folder already walked (a symlink loop, or a second link to it): not walked again"
                    continue
                seen.add((info.st_dev, info.st_ino))
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if _is_dir(entry):
                            subfolders.append(entry.path)
                        elif entry.path not in skip:
                            yield entry.path, None
            except OSError as exc:
                yield folder, f"cannot walk folder: {exc.strerror or exc}"
            stack.extend(sorted(subfolders, reverse=True))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: reported as a file that cannot be read
        return False


def roots(paths: Iterable[str], stdin: TextIO) -> Iterator[str]:
    """The command-line paths, with ``-`` replaced by the paths listed on stdin, one a line."""
    for path in paths:
        if path == "-":
            yield from (line.rstrip("\r\n") for line in stdin if line.strip())
        else:
            yield path


@dataclass
class Summary:
    """Counts of one scan run: ``present`` files carry a mark (``mark_present``) that no model decoded, a wrong
    or missing key; ``skipped`` files were already in the report (``--resume``)."""

    scanned: int = 0
    detected: int = 0
    present: int = 0
    clean: int = 0
    errors: int = 0
    skipped: int = 0
    startup_s: float = 0.0
    seconds: float = 0.0

    @property
    def files_per_s(self) -> float:
        return round(self.scanned / self.seconds, 3) if self.seconds else 0.0

    def add(self, row: dict) -> None:
        self.scanned += 1
        if row["error"] is not None:
            self.errors += 1
        elif row["detected"]:
            self.detected += 1
        elif any(result["mark_present"] for result in row["results"]):
            self.present += 1
        else:
            self.clean += 1

    def to_dict(self) -> dict:
        """The summary in :mod:`wmark.interface.vocabulary`'s names: counts of files are ``files_*``."""
        counts = {"scanned": self.scanned, "detected": self.detected, "present": self.present, "clean": self.clean,
                  "failed": self.errors, "skipped": self.skipped}
        return {**{f"files_{k}": v for k, v in counts.items()}, "files_per_s": self.files_per_s,
                "startup_s": self.startup_s, "seconds": self.seconds}


def scan(paths: Iterable[str], engine, write: Callable[[dict], None], done: set[bytes] = frozenset(),
         exclude: Iterable[str] = (), progress: Callable[[Summary], None] | None = None) -> Summary:
    """Walk ``paths``, scan each file on ``engine`` (skipping paths in ``done``), ``write`` each row.

    ``engine`` is a context manager whose ``map(paths)`` yields rows in any order
    (:mod:`wmark.scan.engines`). Throughput is timed from when the engine is ready.
    """
    summary = Summary()
    walk_errors: deque[dict] = deque()

    def todo() -> Iterator[str]:
        for path, reason in walk(paths, exclude):
            if reason is not None:
                walk_errors.append(error_row(path, reason, type="folder"))
            elif done and path_key(path) in done:
                summary.skipped += 1
            else:
                yield path

    def rows() -> Iterator[dict]:
        for row in engine.map(todo()):
            while walk_errors:
                yield walk_errors.popleft()
            yield row
        yield from walk_errors

    begin = time.perf_counter()
    with engine:
        ready = time.perf_counter()
        summary.startup_s = round(ready - begin, 3)
        for row in rows():
            write(row)
            summary.add(row)
            summary.seconds = time.perf_counter() - ready
            if progress is not None:
                progress(summary)
    summary.seconds = round(time.perf_counter() - ready, 3)
    return summary


@contextmanager
def progress_bar():
    """A rich progress line on stderr (files, files/s, detected, errors); yields its callback."""
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from wmark.progress import stderr_progress

    columns = (SpinnerColumn(), TextColumn("scanned {task.fields[s].scanned} files"),
               TextColumn("{task.fields[s].files_per_s:.1f} files/s"),
               TextColumn("{task.fields[s].detected} detected, {task.fields[s].errors} errors"), TimeElapsedColumn())
    with stderr_progress(*columns) as bar:
        task = bar.add_task("scan", total=None, s=Summary())
        yield lambda summary: bar.update(task, s=summary)


def run(paths: list[str], config: ScanConfig, *, out: str | None = None, csv: str | None = None,
        resume: bool = False, force: bool = False, workers: int = 1, engine: str = "local",
        address: str | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
        progress: bool = False) -> Summary:
    """``wmark scan``: check everything a user could get wrong (WmarkError), then scan.

    Rows go to ``out`` (JSONL) or, without it, to ``stdout`` (default: sys.stdout); ``csv`` gets a
    flat copy at the end. ``-`` among ``paths`` reads paths from ``stdin`` (default: sys.stdin).
    """
    if not paths:
        raise WmarkError("give at least one file or folder to scan (- reads paths from stdin)")
    missing = [p for p in paths if p != "-" and not os.path.lexists(p)]
    if missing:
        raise WmarkError(f"no such file or folder: {', '.join(missing)}")
    config = config.checked()
    runner = make_engine(engine, config, workers, address)
    with open_report(out, csv, resume, force, stdout or sys.stdout) as report:
        if report.dropped_torn_line:
            print(f"{out}: dropped an incomplete last line (the scan was interrupted while writing it)",
                  file=sys.stderr)
        with progress_bar() if progress else nullcontext() as callback:
            return scan(roots(paths, stdin or sys.stdin), runner, report.write, report.done, report.outputs, callback)
