"""When training stops early: a wall-clock budget (``--time 45m``) or SIGINT/SIGTERM."""
from __future__ import annotations

import re
import signal
import time

from wmark.errors import WmarkError

_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``45m``, ``90s``, ``2h`` or ``1h30m``."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = 0.0
    if match is not None:
        hours, minutes, secs = (float(group or 0) for group in match.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    if seconds <= 0:
        raise WmarkError(f"bad time budget {text!r}: use a positive duration such as 45m, 90s, 2h or 1h30m")
    return seconds


class Stop:
    """Turns SIGINT/SIGTERM and the end of the time budget into a reason the loop checks between steps.

    ``due(reserve)`` is true once a signal came or fewer than ``reserve`` seconds of the budget are left.
    """

    def __init__(self, budget: float | None, started: float) -> None:
        self.deadline = None if budget is None else started + budget
        self.reason: str | None = None
        self._previous = {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _signalled(self, signum, frame) -> None:
        self.reason = signal.Signals(signum).name

    def due(self, reserve: float = 0.0) -> bool:
        if self.reason is None and self.deadline is not None and time.monotonic() + reserve >= self.deadline:
            self.reason = "time budget"
        return self.reason is not None

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
