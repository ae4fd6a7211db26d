"""Polling delays that start fast and slow down, and the log line that explains a failure."""

from __future__ import annotations

import re
import time

_FAILURE = re.compile(r"\b(ERROR|FATAL)\b|Exception\b|Error\b")


class Backoff:
    """Delays from ``first`` doubling to ``most`` (to ``later`` after ``later_after`` seconds)."""

    def __init__(
        self,
        first: float,
        most: float,
        *,
        later: float | None = None,
        later_after: float = float("inf"),
    ):
        self._delay = first
        self._most = most
        self._later = later if later is not None else most
        self._later_after = later_after
        self._started = time.monotonic()

    def next(self) -> float:
        """The next delay to sleep."""
        delay = self._delay
        cap = self._most
        if time.monotonic() - self._started > self._later_after:
            cap = self._later
        self._delay = min(self._delay * 2, cap)
        return min(delay, cap)


def failure_line(lines: list[str]) -> str:
    """The most telling line of a log tail: its last error line, else its last line."""
    cleaned = [" ".join(line.split()) for line in lines if line.strip()]
    errors = [line for line in cleaned if _FAILURE.search(line)]
    if errors:
        return errors[-1]
    return cleaned[-1] if cleaned else "the session log is empty"
