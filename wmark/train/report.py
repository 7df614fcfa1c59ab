"""What a training run shows and keeps: rows in ``OUT/log.csv`` and a progress bar on stderr."""
from __future__ import annotations

import csv
from pathlib import Path


class CsvLog:
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


class ProgressBar:
    """A transient rich progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        from wmark.progress import stderr_progress

        self.progress = stderr_progress(
            TextColumn("{task.description}"), BarColumn(bar_width=10), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
        )
        self.task = self.progress.add_task("", total=None, status="")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def show(self, description: str, step: int, total: int, status: str) -> None:
        self.progress.update(self.task, description=description, completed=step, total=total, status=status)
