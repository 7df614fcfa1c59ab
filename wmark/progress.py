"""Progress bars on stderr, shown only when stderr is a terminal (so logs and pipes stay clean)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import Progress


def stderr_progress(*columns, hidden: bool = False) -> Progress:
    """A transient rich Progress on stderr with these columns (rich's defaults when none)."""
    console = Console(stderr=True)
    return Progress(*columns, console=console, transient=True, disable=hidden or not console.is_terminal)
